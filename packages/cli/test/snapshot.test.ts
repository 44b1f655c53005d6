/** snapshot create/list/restore/delete/export/import against a real server. */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
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
    expect(await session.ok(['snapshot', 'list'])).toMatch(
      new RegExp(`^${id}\\tbefore\\t\\d+(\\.\\d)? (B|KiB)\\t\\d\\d:\\d\\d:\\d\\d\\n$`),
    );

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

describe('snapshot export / import', () => {
  const ns = ['-n', 'snaps-tar'];
  const moved = ['-n', 'snaps-moved'];

  it('export writes a .tar.gz; import makes a snapshot of one (gzip or plain tar, file or stdin) that restores the tree', async () => {
    const home = session.home;
    await session.ok(['write', 'doc.txt', 'exported', ...ns]);
    const id = (await session.ok(['snapshot', 'create', ...ns])).trim();

    const exp = await session.run(['snapshot', 'export', id, '-o', 'out.tgz', ...ns]);
    expect([exp.code, exp.stdout]).toEqual([0, '']);
    expect(exp.stderr).toMatch(new RegExp(`^Exported ${id} → ${join(home, 'out.tgz')} \\(\\d+ B\\)\\n$`));
    const bytes = readFileSync(join(home, 'out.tgz'));
    expect([bytes[0], bytes[1]]).toEqual([0x1f, 0x8b]);
    // The default name is the id; --json tells where it went. No temp file is left.
    await session.ok(['snapshot', 'export', id, ...ns]);
    expect(readFileSync(join(home, `${id}.tar.gz`)).equals(bytes)).toBe(true);
    expect(JSON.parse(await session.ok(['snapshot', 'export', id, '-o', 'j.tgz', '--json', ...ns]))).toEqual({
      snapshot_id: id,
      path: join(home, 'j.tgz'),
      size_bytes: bytes.length,
    });
    expect(readdirSync(home).filter((f) => f.endsWith('.part'))).toEqual([]);
    // Into a directory: under the snapshot's name.
    mkdirSync(join(home, 'archives'));
    await session.ok(['snapshot', 'export', id, '-o', 'archives', ...ns]);
    expect(readFileSync(join(home, 'archives', `${id}.tar.gz`)).equals(bytes)).toBe(true);

    const imp = await session.run(['snapshot', 'import', 'out.tgz', '--label', 'moved', ...moved]);
    expect(imp.code).toBe(0);
    const movedId = imp.stdout.trim();
    expect(movedId).toMatch(/^snap-[0-9a-f]{24}$/);
    expect(imp.stderr).toContain(`Imported out.tgz as snapshot ${movedId} "moved" of namespace "snaps-moved"`);
    // A plain tar on stdin, told apart from gzip by its first bytes.
    const fromStdin = JSON.parse(
      await session.ok(['snapshot', 'import', '-', '--json', ...moved], { input: gunzipSync(bytes) }),
    );
    expect(fromStdin).toMatchObject({
      snapshot_id: expect.stringMatching(/^snap-/),
      namespace: 'snaps-moved',
      label: null,
      file_count: 1,
    });
    // A plain tar file too.
    writeFileSync(join(home, 'plain.tar'), gunzipSync(bytes));
    const fromTar = JSON.parse(await session.ok(['snapshot', 'import', 'plain.tar', '--json', ...moved]));
    expect(fromTar.size_bytes).toBe(bytes.length);

    await session.ok(['snapshot', 'restore', movedId, '-y', ...moved]);
    expect(await session.ok(['cat', 'doc.txt', ...moved])).toBe('exported');
    await session.ok(['snapshot', 'export', fromStdin.snapshot_id, '-o', 'again.tgz', ...moved]);
    expect(readFileSync(join(home, 'again.tgz')).equals(bytes)).toBe(true);
  });

  it('a refused archive, a missing file and an unknown id exit 1 with the reason', async () => {
    const home = session.home;
    writeFileSync(join(home, 'junk.tgz'), 'this is not an archive');
    const junk = await session.run(['snapshot', 'import', 'junk.tgz', ...ns]);
    expect(junk.code).toBe(1);
    expect(junk.stdout).toBe('');
    expect(junk.stderr).toMatch(/^error: Archive cannot be imported: /m);

    const missing = await session.run(['snapshot', 'import', 'nope.tgz', ...ns]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope.tgz: no such file');

    const unknown = await session.run(['snapshot', 'export', 'snap-000000000000000000000000', '-o', 'x.tgz', ...ns]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('snapshot list');
    expect(existsSync(join(home, 'x.tgz'))).toBe(false);
    expect(readdirSync(home).filter((f) => f.endsWith('.part'))).toEqual([]);
  });
});
