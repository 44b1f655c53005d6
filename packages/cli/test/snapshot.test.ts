/** snapshot create/list/restore/delete against a real server. */
import { describe, expect, it } from 'vitest';
import { useLoggedInCli } from './helpers/session.js';

const session = useLoggedInCli({ namespace: 'snaps' });

describe('snapshot', () => {
  it('create prints the id; list shows it; restore needs -y and rolls back; delete removes it', async () => {
    await session.ok(['write', 'keep.txt', 'v1']);
    const create = await session.run(['snapshot', 'create', '--label', 'before']);
    expect(create.code).toBe(0);
    const id = create.stdout.trim();
    expect(id).toMatch(/^snap-/);
    expect(create.stderr).toContain(`Created snapshot ${id} "before" of namespace "snaps"`);

    const listed = JSON.parse(await session.ok(['snapshot', 'list', '--json'])).snapshots;
    expect(listed[0]).toMatchObject({ snapshot_id: id, namespace: 'snaps', label: 'before' });
    expect(await session.ok(['snapshot', 'list'])).toMatch(new RegExp(`^${id}\\tbefore\\t\\d+(\\.\\d)? (B|KiB)\\t\\d\\d:\\d\\d:\\d\\d\\n$`));

    await session.ok(['write', 'keep.txt', 'v2']);
    await session.ok(['write', 'new.txt', 'added later']);
    const refused = await session.run(['snapshot', 'restore', id]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('without confirmation');
    expect(await session.ok(['cat', 'keep.txt'])).toBe('v2');

    const restored = JSON.parse(await session.ok(['snapshot', 'restore', id, '-y', '--json']));
    expect(restored).toMatchObject({ snapshot_id: id, files_restored: 1 });
    expect(await session.ok(['cat', 'keep.txt'])).toBe('v1');
    expect(await session.ok(['ls'])).toBe('keep.txt\n');

    expect((await session.run(['snapshot', 'delete', id])).code).toBe(1);
    const del = await session.run(['snapshot', 'delete', id, '-y']);
    expect(del.code).toBe(0);
    expect(del.stderr).toContain(`Deleted ${id}`);
    expect(JSON.parse(await session.ok(['snapshot', 'list', '--json'])).snapshots).toEqual([]);
  });

  it('an unknown snapshot exits 1 with a hint', async () => {
    const r = await session.run(['snapshot', 'restore', 'snap-000000000000000000000000', '-y']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: /m);
    expect(r.stderr).toContain('snapshot list');
  });
});
