/** run, ls, cat, get, put, write, rm against a real server, including their error paths. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { api, startServer, type StartedServer } from '../../../test/helpers/server.js';
import { cleanupHomes, login, makeHome, trove, troveOk } from './helpers/cli.js';

// Every step spawns the CLI (a fresh node process); generous, so a busy machine does not fail the run.
vi.setConfig({ testTimeout: 240_000 });

let server: StartedServer;
let home: string;

beforeAll(async () => {
  server = await startServer();
  home = makeHome();
  await login(home, server.baseUrl, server.runtimeKey, ['-n', 'files']);
});
afterAll(async () => {
  await server?.close();
  cleanupHomes();
});

const opts = () => ({ home });

describe('run', () => {
  it('prints stdout, sends stderr to stderr and exits with the remote exit code', async () => {
    const r = await trove(['run', 'echo out; echo err >&2; exit 7'], opts());
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
  });

  it('forwards piped stdin and joins unquoted words after --', async () => {
    const r = await trove(['run', '--', 'wc', '-c'], { home, input: 'hello' });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('5');
    const noStdin = await trove(['run', '--no-stdin', 'cat'], { home, input: 'ignored' });
    expect(noStdin.stdout).toBe('');
  });

  it('--json prints the full result and still exits with the remote code', async () => {
    const r = await trove(['run', '--json', 'printf hi; exit 3'], opts());
    expect(r.code).toBe(3);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ exit_code: 3, stdout: 'hi', stderr: '' });
    expect(typeof out.duration_ms).toBe('number');
  });

  it('an admin key exits 2 with a hint', async () => {
    const r = await trove(['run', 'true'], { home: makeHome(), env: { TROVE_API_KEY: server.adminKey, TROVE_BASE_URL: server.baseUrl, TROVE_NAMESPACE: 'x' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Admin keys cannot use runtime endpoints');
    expect(r.stderr).toMatch(/^hint: /m);
  });

  it('a workspace key without any namespace is told how to set one', async () => {
    const r = await trove(['run', 'true'], { home: makeHome(), env: { TROVE_API_KEY: server.runtimeKey, TROVE_BASE_URL: server.baseUrl } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: this key needs a namespace');
    expect(r.stderr).toContain('-n NAMESPACE');
  });
});

describe('write, cat, ls, rm', () => {
  it('writes text (argument and stdin), reads it back, lists and deletes', async () => {
    const w = await trove(['write', 'notes/a.md', 'hello world'], opts());
    expect(w.code).toBe(0);
    expect(w.stderr).toContain('Wrote workspace/notes/a.md (11 B)');
    expect(JSON.parse(await troveOk(['write', 'notes/b.md', '-', '--json'], { home, input: 'from stdin\n' }))).toEqual({
      path: 'workspace/notes/b.md',
      size_bytes: 11,
    });
    expect(await troveOk(['cat', 'notes/a.md'], opts())).toBe('hello world');
    expect(await troveOk(['cat', 'workspace/notes/b.md'], opts())).toBe('from stdin\n');

    expect(await troveOk(['ls'], opts())).toBe('notes/\n');
    expect(await troveOk(['ls', 'notes'], opts())).toBe('a.md\nb.md\n');
    expect(await troveOk(['ls', '-r'], opts())).toBe('notes/\nnotes/a.md\nnotes/b.md\n');
    const long = await troveOk(['ls', '-l', 'notes'], opts());
    expect(long).toMatch(/^a\.md\t11 B\t\d\d:\d\d:\d\d\n/);
    const json = JSON.parse(await troveOk(['ls', 'notes', '--json'], opts()));
    expect(json.truncated).toBe(false);
    expect(json.entries[0]).toMatchObject({ name: 'a.md', path: 'workspace/notes/a.md', is_dir: false, size_bytes: 11 });
    expect(json.entries[0].modified_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const content = JSON.parse(await troveOk(['cat', 'notes/a.md', '--json'], opts()));
    expect(content).toMatchObject({ path: 'workspace/notes/a.md', encoding: 'utf-8', content: 'hello world', truncated: false });

    const rm = await trove(['rm', 'notes/a.md'], opts());
    expect(rm.code).toBe(0);
    expect(rm.stderr).toContain('Deleted workspace/notes/a.md');
    expect(await troveOk(['ls', 'notes'], opts())).toBe('b.md\n');
  });

  it('several paths need -y without a terminal', async () => {
    await troveOk(['write', 'r/1.txt', '1'], opts());
    await troveOk(['write', 'r/2.txt', '2'], opts());
    const refused = await trove(['rm', 'r/1.txt', 'r/2.txt'], opts());
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('refusing to delete 2 paths without confirmation');
    expect(refused.stderr).toContain('-y');
    expect(await troveOk(['ls', 'r'], opts())).toBe('1.txt\n2.txt\n');
    expect(JSON.parse(await troveOk(['rm', '-y', '--json', 'r/1.txt', 'r'], opts()))).toEqual({
      deleted: ['workspace/r/1.txt', 'workspace/r'],
    });
  });

  it('a missing file exits 1 with a hint; a directory is not a file', async () => {
    const cat = await trove(['cat', 'nope.txt'], opts());
    expect(cat.code).toBe(1);
    expect(cat.stderr).toMatch(/^error: Path not found: workspace\/nope\.txt$/m);
    expect(cat.stderr).toContain('trove ls');
    expect((await trove(['rm', 'nope.txt'], opts())).code).toBe(1);
    expect((await trove(['ls', 'nope'], opts())).code).toBe(1);
    await troveOk(['write', 'd/x.txt', 'x'], opts());
    const dir = await trove(['cat', 'd'], opts());
    expect(dir.code).toBe(1);
    expect(dir.stderr).toMatch(/directory/i);
  });

  it('a namespace-locked key used with another namespace exits 2', async () => {
    const adminHome = makeHome();
    await login(adminHome, server.baseUrl, server.adminKey);
    const key = (await troveOk(['keys', 'create', 'locked', '-n', 'mine'], { home: adminHome })).trim();
    const env = { TROVE_API_KEY: key, TROVE_BASE_URL: server.baseUrl };
    const other = await trove(['ls', '-n', 'theirs'], { home: makeHome(), env });
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('locked to namespace "mine"');
    await troveOk(['write', 'ok.txt', 'mine'], { home: makeHome(), env });
    expect(await troveOk(['cat', 'ok.txt'], { home: makeHome(), env })).toBe('mine');
  });
});

describe('put and get', () => {
  it('uploads a file (binary-safe), to a directory when the remote ends with /, and downloads it back', async () => {
    const local = makeHome();
    const bytes = randomBytes(300_000);
    writeFileSync(join(local, 'blob.bin'), bytes);
    const put = await trove(['put', 'blob.bin', 'up/'], { home, cwd: local });
    expect(put.code).toBe(0);
    expect(put.stderr).toContain('→ workspace/up/blob.bin');
    expect(JSON.parse(await troveOk(['put', 'blob.bin', 'renamed.bin', '--json'], { home, cwd: local }))).toMatchObject({
      path: 'workspace/renamed.bin',
      size_bytes: 300_000,
    });
    const res = await api(server, server.runtimeKey, 'files')('/files/up/blob.bin');
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);

    const dl = makeHome();
    await troveOk(['get', 'up/blob.bin'], { home, cwd: dl });
    expect(readFileSync(join(dl, 'blob.bin')).equals(bytes)).toBe(true);
    await troveOk(['get', 'renamed.bin', 'copy.bin'], { home, cwd: dl });
    expect(readFileSync(join(dl, 'copy.bin')).equals(bytes)).toBe(true);
    mkdirSync(join(dl, 'into'));
    await troveOk(['get', 'renamed.bin', 'into'], { home, cwd: dl });
    expect(existsSync(join(dl, 'into', 'renamed.bin'))).toBe(true);
    const toStdout = await trove(['get', 'up/blob.bin', '-'], { home, cwd: dl });
    expect(Buffer.from(toStdout.stdout, 'latin1').length).toBeGreaterThan(0);
    // No temp files are left behind.
    expect(readdirSync(dl).sort()).toEqual(['blob.bin', 'copy.bin', 'into']);
  });

  it('put - uploads stdin', async () => {
    await troveOk(['put', '-', 'stdin.txt'], { home, input: 'piped bytes' });
    expect(await troveOk(['cat', 'stdin.txt'], opts())).toBe('piped bytes');
    expect((await trove(['put', '-'], { home, input: 'x' })).code).toBe(1);
  });

  it('directories need -r both ways, and round-trip', async () => {
    const local = makeHome();
    mkdirSync(join(local, 'tree', 'sub'), { recursive: true });
    writeFileSync(join(local, 'tree', 'a.txt'), 'A');
    writeFileSync(join(local, 'tree', 'sub', 'b.txt'), 'B');
    const noR = await trove(['put', 'tree'], { home, cwd: local });
    expect(noR.code).toBe(1);
    expect(noR.stderr).toContain('tree is a directory');
    expect(noR.stderr).toContain('-r');
    const up = JSON.parse(await troveOk(['put', '-r', 'tree', 'backup/', '--json'], { home, cwd: local }));
    expect(up.files.map((f: { path: string }) => f.path)).toEqual(['workspace/backup/tree/a.txt', 'workspace/backup/tree/sub/b.txt']);
    expect(await troveOk(['ls', '-r', 'backup'], opts())).toBe('tree/\ntree/sub/\ntree/sub/b.txt\ntree/a.txt\n');

    const dl = makeHome();
    const getDir = await trove(['get', 'backup/tree'], { home, cwd: dl });
    expect(getDir.code).toBe(1);
    expect(getDir.stderr).toMatch(/directory/i);
    await troveOk(['get', '-r', 'backup/tree', 'restored'], { home, cwd: dl });
    expect(readFileSync(join(dl, 'restored', 'a.txt'), 'utf8')).toBe('A');
    expect(readFileSync(join(dl, 'restored', 'sub', 'b.txt'), 'utf8')).toBe('B');
  });

  it('a missing local file or remote file exits 1', async () => {
    const local = makeHome();
    const put = await trove(['put', 'missing.txt'], { home, cwd: local });
    expect(put.code).toBe(1);
    expect(put.stderr).toContain('missing.txt: no such file or directory');
    const get = await trove(['get', 'missing.txt'], { home, cwd: local });
    expect(get.code).toBe(1);
    expect(get.stderr).toContain('Path not found');
    expect(readdirSync(local)).toEqual([]);
  });
});
