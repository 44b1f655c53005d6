/** run, ls, cat, get, put, write, rm against a real server, including their error paths. */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { api } from '../../../test/helpers/server.js';
import { login, makeHome, trove, troveOk } from './helpers/cli.js';
import { useLoggedInCli } from './helpers/session.js';

const session = useLoggedInCli({ namespace: 'files' });

describe('run', () => {
  it('prints stdout, sends stderr to stderr and exits with the remote exit code', async () => {
    const r = await session.run(['run', 'echo out; echo err >&2; exit 7']);
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
  });

  it('forwards piped stdin and joins unquoted words after --', async () => {
    const r = await session.run(['run', '--', 'wc', '-c'], { input: 'hello' });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('5');
    const noStdin = await session.run(['run', '--no-stdin', 'cat'], { input: 'ignored' });
    expect(noStdin.stdout).toBe('');
  });

  it('--json prints the full result and still exits with the remote code', async () => {
    const r = await session.run(['run', '--json', 'printf hi; exit 3']);
    expect(r.code).toBe(3);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ exit_code: 3, stdout: 'hi', stderr: '' });
    expect(typeof out.duration_ms).toBe('number');
  });

  it('an admin key exits 2 with a hint', async () => {
    const r = await trove(['run', 'true'], {
      home: makeHome(),
      env: { TROVE_API_KEY: session.server.adminKey, TROVE_BASE_URL: session.server.baseUrl, TROVE_NAMESPACE: 'x' },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Admin keys cannot use runtime endpoints');
    expect(r.stderr).toMatch(/^hint: /m);
  });

  it('a workspace key without any namespace is told how to set one', async () => {
    const r = await trove(['run', 'true'], {
      home: makeHome(),
      env: { TROVE_API_KEY: session.server.runtimeKey, TROVE_BASE_URL: session.server.baseUrl },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: this key needs a namespace');
    expect(r.stderr).toContain('-n NAMESPACE');
  });
});

describe('write, cat, ls, rm', () => {
  it('writes text that starts with a dash, and refuses a mistyped flag unless it follows --', async () => {
    expect(JSON.parse(await session.ok(['write', 'dash/todo.md', '- [ ] ship it', '--json']))).toEqual({
      path: 'workspace/dash/todo.md',
      size_bytes: 13,
      etag: expect.stringMatching(/^"[0-9a-f.-]+"$/),
    });
    expect(await session.ok(['cat', 'dash/todo.md'])).toBe('- [ ] ship it');
    const typo = await session.run(['write', 'dash/x.md', '--jsn']);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain("error: unknown option '--jsn'");
    expect(typo.stderr).toContain("trove write PATH -- '--jsn'");
    await session.ok(['write', 'dash/x.md', '--', '--jsn']);
    expect(await session.ok(['cat', 'dash/x.md'])).toBe('--jsn');
    await session.ok(['rm', 'dash']);
  });

  it('writes text (argument and stdin), reads it back, lists and deletes', async () => {
    const w = await session.run(['write', 'notes/a.md', 'hello world']);
    expect(w.code).toBe(0);
    expect(w.stderr).toContain('Wrote workspace/notes/a.md (11 B)');
    expect(JSON.parse(await session.ok(['write', 'notes/b.md', '-', '--json'], { input: 'from stdin\n' }))).toEqual({
      path: 'workspace/notes/b.md',
      size_bytes: 11,
      etag: expect.stringMatching(/^"[0-9a-f.-]+"$/),
    });
    expect(await session.ok(['cat', 'notes/a.md'])).toBe('hello world');
    expect(await session.ok(['cat', 'workspace/notes/b.md'])).toBe('from stdin\n');

    expect(await session.ok(['ls'])).toBe('notes/\n');
    expect(await session.ok(['ls', 'notes'])).toBe('a.md\nb.md\n');
    expect(await session.ok(['ls', '-r'])).toBe('notes/\nnotes/a.md\nnotes/b.md\n');
    const long = await session.ok(['ls', '-l', 'notes']);
    expect(long).toMatch(/^a\.md\t11 B\t\d\d:\d\d:\d\d\n/);
    const json = JSON.parse(await session.ok(['ls', 'notes', '--json']));
    expect(json.truncated).toBe(false);
    expect(json.entries[0]).toMatchObject({
      name: 'a.md',
      path: 'workspace/notes/a.md',
      is_dir: false,
      size_bytes: 11,
    });
    expect(json.entries[0].modified_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const content = JSON.parse(await session.ok(['cat', 'notes/a.md', '--json']));
    expect(content).toMatchObject({
      path: 'workspace/notes/a.md',
      encoding: 'utf-8',
      content: 'hello world',
      truncated: false,
    });

    const rm = await session.run(['rm', 'notes/a.md']);
    expect(rm.code).toBe(0);
    expect(rm.stderr).toContain('Deleted workspace/notes/a.md');
    expect(await session.ok(['ls', 'notes'])).toBe('b.md\n');
  });

  it('several paths need -y without a terminal', async () => {
    await session.ok(['write', 'r/1.txt', '1']);
    await session.ok(['write', 'r/2.txt', '2']);
    const refused = await session.run(['rm', 'r/1.txt', 'r/2.txt']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('refusing to delete 2 paths without confirmation');
    expect(refused.stderr).toContain('-y');
    expect(await session.ok(['ls', 'r'])).toBe('1.txt\n2.txt\n');
    expect(JSON.parse(await session.ok(['rm', '-y', '--json', 'r/1.txt', 'r']))).toEqual({
      deleted: ['workspace/r/1.txt', 'workspace/r'],
    });
  });

  it('a missing file exits 1 with a hint; a directory is not a file', async () => {
    const cat = await session.run(['cat', 'nope.txt']);
    expect(cat.code).toBe(1);
    expect(cat.stderr).toMatch(/^error: Path not found: workspace\/nope\.txt$/m);
    expect(cat.stderr).toContain('trove ls');
    expect((await session.run(['rm', 'nope.txt'])).code).toBe(1);
    expect((await session.run(['ls', 'nope'])).code).toBe(1);
    await session.ok(['write', 'd/x.txt', 'x']);
    const dir = await session.run(['cat', 'd']);
    expect(dir.code).toBe(1);
    expect(dir.stderr).toMatch(/directory/i);
  });

  it('a namespace-locked key used with another namespace exits 2', async () => {
    const adminHome = makeHome();
    await login(adminHome, session.server.baseUrl, session.server.adminKey);
    const key = (await troveOk(['keys', 'create', 'locked', '-n', 'mine'], { home: adminHome })).trim();
    const env = { TROVE_API_KEY: key, TROVE_BASE_URL: session.server.baseUrl };
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
    const put = await session.run(['put', 'blob.bin', 'up/'], { cwd: local });
    expect(put.code).toBe(0);
    expect(put.stderr).toContain('→ workspace/up/blob.bin');
    expect(JSON.parse(await session.ok(['put', 'blob.bin', 'renamed.bin', '--json'], { cwd: local }))).toMatchObject({
      path: 'workspace/renamed.bin',
      size_bytes: 300_000,
    });
    const res = await api(session.server, session.server.runtimeKey, 'files')('/files/up/blob.bin');
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);

    const dl = makeHome();
    await session.ok(['get', 'up/blob.bin'], { cwd: dl });
    expect(readFileSync(join(dl, 'blob.bin')).equals(bytes)).toBe(true);
    await session.ok(['get', 'renamed.bin', 'copy.bin'], { cwd: dl });
    expect(readFileSync(join(dl, 'copy.bin')).equals(bytes)).toBe(true);
    mkdirSync(join(dl, 'into'));
    await session.ok(['get', 'renamed.bin', 'into'], { cwd: dl });
    expect(existsSync(join(dl, 'into', 'renamed.bin'))).toBe(true);
    const toStdout = await session.run(['get', 'up/blob.bin', '-'], { cwd: dl });
    expect(Buffer.from(toStdout.stdout, 'latin1').length).toBeGreaterThan(0);
    // No temp files are left behind.
    expect(readdirSync(dl).sort()).toEqual(['blob.bin', 'copy.bin', 'into']);
  });

  it('put - uploads stdin', async () => {
    await session.ok(['put', '-', 'stdin.txt'], { input: 'piped bytes' });
    expect(await session.ok(['cat', 'stdin.txt'])).toBe('piped bytes');
    expect((await session.run(['put', '-'], { input: 'x' })).code).toBe(1);
  });

  it('directories need -r both ways, and round-trip', async () => {
    const local = makeHome();
    mkdirSync(join(local, 'tree', 'sub'), { recursive: true });
    writeFileSync(join(local, 'tree', 'a.txt'), 'A');
    writeFileSync(join(local, 'tree', 'sub', 'b.txt'), 'B');
    const noR = await session.run(['put', 'tree'], { cwd: local });
    expect(noR.code).toBe(1);
    expect(noR.stderr).toContain('tree is a directory');
    expect(noR.stderr).toContain('-r');
    const up = JSON.parse(await session.ok(['put', '-r', 'tree', 'backup/', '--json'], { cwd: local }));
    expect(up.files.map((f: { path: string }) => f.path)).toEqual([
      'workspace/backup/tree/a.txt',
      'workspace/backup/tree/sub/b.txt',
    ]);
    expect(await session.ok(['ls', '-r', 'backup'])).toBe('tree/\ntree/sub/\ntree/sub/b.txt\ntree/a.txt\n');

    const dl = makeHome();
    const getDir = await session.run(['get', 'backup/tree'], { cwd: dl });
    expect(getDir.code).toBe(1);
    expect(getDir.stderr).toMatch(/directory/i);
    await session.ok(['get', '-r', 'backup/tree', 'restored'], { cwd: dl });
    expect(readFileSync(join(dl, 'restored', 'a.txt'), 'utf8')).toBe('A');
    expect(readFileSync(join(dl, 'restored', 'sub', 'b.txt'), 'utf8')).toBe('B');
  });

  it('a missing local file or remote file exits 1', async () => {
    const local = makeHome();
    const put = await session.run(['put', 'missing.txt'], { cwd: local });
    expect(put.code).toBe(1);
    expect(put.stderr).toContain('missing.txt: no such file or directory');
    const get = await session.run(['get', 'missing.txt'], { cwd: local });
    expect(get.code).toBe(1);
    expect(get.stderr).toContain('Path not found');
    expect(readdirSync(local)).toEqual([]);
  });
});
