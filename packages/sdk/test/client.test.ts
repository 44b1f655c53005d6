/** TroveClient against the real server: files, exec, init script, bootstrap, snapshots, identity. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../../../test/helpers/server.js';
import { NotFoundError, TroveAdminClient, TroveClient, TroveError, TroveExecError } from '../src/index.js';

const READ_CAP = 65536;
let server: StartedServer;
let trove: TroveClient;

beforeAll(async () => {
  server = await startServer({ env: { TROVE_MAX_READ_BYTES: String(READ_CAP) } });
  trove = new TroveClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl, namespace: 'client-test' });
});
afterAll(async () => {
  await server?.close();
});

const bytes = (n: number, seed = 7) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) % 256);
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('identity', () => {
  it('me() describes the key', async () => {
    const me = await trove.me();
    expect(me).toEqual({
      workspaceId: server.workspaceId,
      keyId: expect.stringMatching(/^key-/),
      keyName: expect.any(String),
      scope: 'workspace',
      namespace: null,
    });
  });

  it('health() answers without a valid key', async () => {
    const anon = new TroveClient({ apiKey: 'trove-sk-not-a-real-key', baseUrl: server.baseUrl });
    expect((await anon.health()).status).toBe('ok');
  });

  it('reads options from the environment', async () => {
    const saved = { ...process.env };
    try {
      process.env.TROVE_API_KEY = server.runtimeKey;
      process.env.TROVE_BASE_URL = server.baseUrl + '/';
      process.env.TROVE_NAMESPACE = 'from-env';
      const fromEnv = new TroveClient();
      expect(fromEnv.namespace).toBe('from-env');
      expect(fromEnv.baseUrl).toBe(server.baseUrl);
      expect((await fromEnv.write('env.txt', 'x')).path).toBe('workspace/env.txt');
      expect(await trove.withNamespace('from-env').readText('env.txt')).toBe('x');
      delete process.env.TROVE_API_KEY;
      expect(() => new TroveClient()).toThrow(TroveError);
      expect(() => new TroveClient()).toThrow(/TROVE_API_KEY/);
    } finally {
      process.env = saved;
    }
  });

  it('a namespace-scoped key works without a namespace and is confined to it', async () => {
    const admin = new TroveAdminClient({ apiKey: server.adminKey, baseUrl: server.baseUrl });
    const { apiKey } = await admin.createKey('scoped', { namespace: 'scoped-ns' });
    const scoped = new TroveClient({ apiKey, baseUrl: server.baseUrl });
    expect(scoped.namespace).toBeUndefined();
    await scoped.write('mine.txt', 'scoped');
    expect(await trove.withNamespace('scoped-ns').readText('mine.txt')).toBe('scoped');
    expect((await scoped.me()).namespace).toBe('scoped-ns');
  });
});

describe('files', () => {
  it('write / readText / readBytes / readFile round-trip UTF-8', async () => {
    const w = await trove.write('notes/a.txt', 'héllo\n');
    expect(w).toEqual({ path: 'workspace/notes/a.txt', sizeBytes: 7, etag: expect.stringMatching(/^"[0-9a-f.-]+"$/) });
    expect(await trove.readText('notes/a.txt')).toBe('héllo\n');
    expect(await trove.readBytes('workspace/notes/a.txt')).toEqual(new TextEncoder().encode('héllo\n'));
    const f = await trove.readFile('/workspace/notes/a.txt');
    expect(f).toEqual({
      path: 'workspace/notes/a.txt',
      sizeBytes: 7,
      modifiedAt: expect.stringMatching(ISO_MS),
      encoding: 'utf-8',
      content: 'héllo\n',
      truncated: false,
    });
  });

  it('readText keeps a byte-order mark and replaces invalid UTF-8', async () => {
    await trove.write('bom.txt', '\uFEFFwith bom');
    expect(await trove.readText('bom.txt')).toBe('\uFEFFwith bom');
    await trove.upload('invalid.txt', Uint8Array.from([0x61, 0xff, 0x62]));
    expect(await trove.readText('invalid.txt')).toBe('a\uFFFDb');
  });

  it('accepts every path form', async () => {
    expect((await trove.write('/workspace/forms/x.txt', '1')).path).toBe('workspace/forms/x.txt');
    expect((await trove.write('workspace/forms/y.txt', '2')).path).toBe('workspace/forms/y.txt');
    expect((await trove.write('/forms/z.txt', '3')).path).toBe('workspace/forms/z.txt');
    expect(await trove.readText('forms/x.txt')).toBe('1');
    expect(await trove.readText('/workspace/forms/y.txt')).toBe('2');
    expect((await trove.readFile('forms/z.txt')).content).toBe('3');
  });

  it('readFile reports binary files without content', async () => {
    await trove.upload('bin/blob.dat', Uint8Array.from([0, 255, 0, 254, 1]));
    const f = await trove.readFile('bin/blob.dat');
    expect(f.encoding).toBe('binary');
    expect(f.content).toBeNull();
    expect(f.sizeBytes).toBe(5);
  });

  it('readBytesFull reports truncation past the server read cap', async () => {
    const big = bytes(READ_CAP + 34_464);
    await trove.upload('big.bin', big);
    const full = await trove.readBytesFull('big.bin');
    expect(full.truncated).toBe(true);
    expect(full.sizeBytes).toBe(big.length);
    expect(full.content.length).toBe(READ_CAP);
    expect(Buffer.from(full.content).equals(Buffer.from(big.subarray(0, READ_CAP)))).toBe(true);
    expect((await trove.readBytes('big.bin')).length).toBe(READ_CAP);

    const small = await trove.readBytesFull('notes/a.txt');
    expect(small).toEqual({
      content: new TextEncoder().encode('héllo\n'),
      truncated: false,
      sizeBytes: 7,
      etag: expect.stringMatching(/^"[0-9a-f.-]+"$/),
    });
  });

  it('readStream streams the body', async () => {
    const data = bytes(40_000, 3);
    await trove.upload('stream/s.bin', data);
    const { body, truncated, sizeBytes } = await trove.readStream('stream/s.bin');
    expect(truncated).toBe(false);
    expect(sizeBytes).toBe(40_000);
    const chunks: Uint8Array[] = [];
    for await (const c of body as unknown as AsyncIterable<Uint8Array>) chunks.push(c);
    expect(Buffer.concat(chunks).equals(Buffer.from(data))).toBe(true);
  });

  it('listDir lists directories first, then files, alphabetically; recursive is flat', async () => {
    const ns = trove.withNamespace('list-test');
    await ns.write('b.txt', 'bb');
    await ns.write('a.txt', 'a');
    await ns.write('zdir/inner.txt', 'i');
    await ns.write('adir/deep/x.txt', 'x');
    const root = await ns.listDir();
    expect(root.truncated).toBe(false);
    expect(root.entries.map((e) => e.name)).toEqual(['adir', 'zdir', 'a.txt', 'b.txt']);
    const adir = root.entries[0]!;
    expect(adir).toEqual({
      name: 'adir',
      path: 'workspace/adir',
      isDir: true,
      sizeBytes: null,
      modifiedAt: expect.stringMatching(ISO_MS),
    });
    expect(root.entries[3]).toMatchObject({ name: 'b.txt', path: 'workspace/b.txt', isDir: false, sizeBytes: 2 });
    const rec = await ns.listDir('/', { recursive: true });
    expect(rec.entries.map((e) => e.path)).toContain('workspace/adir/deep/x.txt');
    expect(rec.entries.map((e) => e.path)).toContain('workspace/zdir/inner.txt');
    const sub = await ns.listDir('workspace/zdir');
    expect(sub.entries.map((e) => e.path)).toEqual(['workspace/zdir/inner.txt']);
    expect((await ns.listDir('zdir')).entries).toEqual(sub.entries);
  });

  it('delete removes files and directories', async () => {
    await trove.write('del/one.txt', '1');
    await trove.write('del/sub/two.txt', '2');
    expect(await trove.delete('del/one.txt')).toEqual({ deleted: 'workspace/del/one.txt' });
    await expect(trove.readText('del/one.txt')).rejects.toBeInstanceOf(NotFoundError);
    expect(await trove.delete('workspace/del')).toEqual({ deleted: 'workspace/del' });
    await expect(trove.listDir('del')).rejects.toBeInstanceOf(NotFoundError);
    await expect(trove.delete('del')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('namespaces are isolated', async () => {
    await trove.write('iso.txt', 'here');
    await expect(trove.withNamespace('elsewhere').readText('iso.txt')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('exec', () => {
  it('exec returns stdout and sees the namespace as workspace/', async () => {
    await trove.write('exec/in.txt', 'file content');
    expect(await trove.exec('echo hi')).toBe('hi\n');
    expect(await trove.exec('cat workspace/exec/in.txt')).toBe('file content');
  });

  it('exec feeds stdin', async () => {
    expect(await trove.exec('tr a-z A-Z', { stdin: 'shout' })).toBe('SHOUT');
    expect(await trove.exec('wc -c < /dev/stdin')).toMatch(/^\s*0\s*$/);
  });

  it('execDetailed returns exit code, both streams and duration without throwing', async () => {
    const r = await trove.execDetailed('echo out; echo err >&2; exit 3');
    expect(r).toEqual({
      exitCode: 3,
      stdout: 'out\n',
      stderr: 'err\n',
      durationMs: expect.any(Number),
      exitReason: 'exited',
    });
  });

  it('exec throws TroveExecError on a non-zero exit', async () => {
    const err = await trove.exec('echo partial; echo boom >&2; exit 7').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TroveExecError);
    const e = err as TroveExecError;
    expect(e.exitCode).toBe(7);
    expect(e.stdout).toBe('partial\n');
    expect(e.stderr).toBe('boom\n');
    expect(e.command).toBe('echo partial; echo boom >&2; exit 7');
    expect(e.message).toBe('Command exited with code 7: boom');
  });

  it('execChain runs commands in order and stops at the first failure', async () => {
    expect(await trove.execChain(['echo a', 'echo b'])).toBe('a\nb\n');
    const err = (await trove.execChain(['echo a', 'false', 'echo c']).catch((e: unknown) => e)) as TroveExecError;
    expect(err).toBeInstanceOf(TroveExecError);
    expect(err.stdout).toBe('a\n');
    expect(err.exitCode).toBe(1);
    expect(err.command).toBe('{ echo a\n} && { false\n} && { echo c\n}');
  });

  it('execChain keeps commands ending in \\;, ; or a comment intact', async () => {
    await trove.write('chain/x.md', 'x');
    const out = await trove.execChain([
      'cd workspace/chain;',
      'find . -name "*.md" -exec echo found {} \\;',
      'echo done # trailing comment',
    ]);
    expect(out).toBe('found ./x.md\ndone\n');
  });

  it('rejects an empty command before sending it', async () => {
    await expect(trove.exec('  ')).rejects.toThrow(TypeError);
    await expect(trove.execChain([])).rejects.toThrow(TypeError);
    await expect(trove.execChain(['echo a', ''])).rejects.toThrow(TypeError);
  });
});

describe('init script', () => {
  it('setInit / getInit / clearInit, and exec sources it', async () => {
    const ns = trove.withNamespace('init-test');
    expect(await ns.getInit()).toBeNull();
    expect((await ns.setInit('export GREETING=hello\n')).path).toBe('workspace/.trove/init.sh');
    expect(await ns.getInit()).toBe('export GREETING=hello\n');
    expect(await ns.exec('echo "$GREETING"')).toBe('hello\n');
    expect(await ns.clearInit()).toBe(true);
    expect(await ns.clearInit()).toBe(false);
    expect(await ns.getInit()).toBeNull();
    expect(await ns.exec('echo "[$GREETING]"')).toBe('[]\n');
  });
});

describe('bootstrap', () => {
  it('summarises an empty namespace', async () => {
    const s = await trove.withNamespace('boot-empty').bootstrap();
    expect(s.namespace).toBe('boot-empty');
    expect(s.fileCount).toBe(0);
    expect(s.recentFiles).toEqual([]);
    expect(s.initScript).toBeNull();
    expect(s.agentNotes).toBeNull();
    expect(s.asSystemPromptBlock()).toContain('The workspace is empty.');
  });

  it('reports the 10 most recent files, the init script and agent notes', async () => {
    const ns = trove.withNamespace('boot-full');
    await ns.write('old/f00.txt', '0');
    await ns.write('old/f01.txt', '1');
    // A pause so the two files above are strictly older than every later one.
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 2; i < 12; i++) await ns.write(`new/f${String(i).padStart(2, '0')}.txt`, String(i));
    await ns.setInit('export X=1\n');
    await ns.write('.trove/agent.md', 'Remember: the report is in new/.\n');

    const s = await ns.bootstrap();
    expect(s.fileCount).toBe(12);
    expect(s.fileCountTruncated).toBe(false);
    expect(s.recentFiles).toHaveLength(10);
    expect(s.recentFiles.every((f) => f.path.startsWith('workspace/new/'))).toBe(true);
    const times = s.recentFiles.map((f) => f.modifiedAt);
    expect([...times].sort().reverse()).toEqual(times);
    expect(s.initScript).toBe('export X=1\n');
    expect(s.agentNotes).toBe('Remember: the report is in new/.\n');

    const block = s.asSystemPromptBlock();
    expect(block.startsWith('<trove_workspace namespace="boot-full">')).toBe(true);
    expect(block).toContain('Files: 12.');
    expect(block).toContain('workspace/new/f11.txt');
    expect(block).not.toContain('f00.txt');
    expect(block).toContain('<init_script>\nexport X=1\n</init_script>');
    expect(block).toContain('<notes>\nRemember: the report is in new/.\n</notes>');
    expect(block.endsWith('</trove_workspace>')).toBe(true);
  });
});

describe('snapshots', () => {
  it('create / list / restore / delete', async () => {
    const ns = trove.withNamespace('snap-test');
    await ns.write('keep.txt', 'v1');
    const snap = await ns.snapshots.create({ label: 'before' });
    expect(snap).toEqual({
      snapshotId: expect.stringMatching(/^snap-/),
      namespace: 'snap-test',
      label: 'before',
      sizeBytes: expect.any(Number),
      fileCount: 1,
      createdAt: expect.stringMatching(ISO_MS),
    });
    const unlabeled = await ns.snapshots.create();
    expect(unlabeled.label).toBeNull();
    const list = await ns.snapshots.list();
    expect(list.map((s) => s.snapshotId)).toEqual([unlabeled.snapshotId, snap.snapshotId]);

    await ns.write('keep.txt', 'v2');
    await ns.write('added.txt', 'new');
    const restored = await ns.snapshots.restore(snap.snapshotId);
    expect(restored.filesRestored).toBe(1);
    expect(await ns.readText('keep.txt')).toBe('v1');
    await expect(ns.readText('added.txt')).rejects.toBeInstanceOf(NotFoundError);

    expect(await ns.snapshots.delete(snap.snapshotId)).toEqual({ snapshotId: snap.snapshotId, deleted: true });
    expect((await ns.snapshots.list()).map((s) => s.snapshotId)).toEqual([unlabeled.snapshotId]);
    await expect(ns.snapshots.restore(snap.snapshotId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(ns.snapshots.delete(snap.snapshotId)).rejects.toBeInstanceOf(NotFoundError);
    // Snapshots belong to their namespace.
    expect(await trove.withNamespace('snap-other').snapshots.list()).toEqual([]);
  });
});
