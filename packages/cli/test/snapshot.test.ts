/** snapshot create/list/restore/delete against a real server. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startServer, type StartedServer } from '../../../test/helpers/server.js';
import { cleanupHomes, login, makeHome, trove, troveOk } from './helpers/cli.js';

// Every step spawns the CLI (a fresh node process); generous, so a busy machine does not fail the run.
vi.setConfig({ testTimeout: 240_000 });

let server: StartedServer;
let home: string;

beforeAll(async () => {
  server = await startServer();
  home = makeHome();
  await login(home, server.baseUrl, server.runtimeKey, ['-n', 'snaps']);
});
afterAll(async () => {
  await server?.close();
  cleanupHomes();
});

describe('snapshot', () => {
  it('create prints the id; list shows it; restore needs -y and rolls back; delete removes it', async () => {
    await troveOk(['write', 'keep.txt', 'v1'], { home });
    const create = await trove(['snapshot', 'create', '--label', 'before'], { home });
    expect(create.code).toBe(0);
    const id = create.stdout.trim();
    expect(id).toMatch(/^snap-/);
    expect(create.stderr).toContain(`Created snapshot ${id} "before" of namespace "snaps"`);

    const listed = JSON.parse(await troveOk(['snapshot', 'list', '--json'], { home })).snapshots;
    expect(listed[0]).toMatchObject({ snapshot_id: id, namespace: 'snaps', label: 'before' });
    expect(await troveOk(['snapshot', 'list'], { home })).toMatch(new RegExp(`^${id}\\tbefore\\t\\d+(\\.\\d)? (B|KiB)\\t\\d\\d:\\d\\d:\\d\\d\\n$`));

    await troveOk(['write', 'keep.txt', 'v2'], { home });
    await troveOk(['write', 'new.txt', 'added later'], { home });
    const refused = await trove(['snapshot', 'restore', id], { home });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('without confirmation');
    expect(await troveOk(['cat', 'keep.txt'], { home })).toBe('v2');

    const restored = JSON.parse(await troveOk(['snapshot', 'restore', id, '-y', '--json'], { home }));
    expect(restored).toMatchObject({ snapshot_id: id, files_restored: 1 });
    expect(await troveOk(['cat', 'keep.txt'], { home })).toBe('v1');
    expect(await troveOk(['ls'], { home })).toBe('keep.txt\n');

    expect((await trove(['snapshot', 'delete', id], { home })).code).toBe(1);
    const del = await trove(['snapshot', 'delete', id, '-y'], { home });
    expect(del.code).toBe(0);
    expect(del.stderr).toContain(`Deleted ${id}`);
    expect(JSON.parse(await troveOk(['snapshot', 'list', '--json'], { home })).snapshots).toEqual([]);
  });

  it('an unknown snapshot exits 1 with a hint', async () => {
    const r = await trove(['snapshot', 'restore', 'snap-000000000000000000000000', '-y'], { home });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: /m);
    expect(r.stderr).toContain('snapshot list');
  });
});
