/** File operations: ls, read, readRaw, write, edit, delete, upload and download, against the real server. */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { TroveClient } from 'trove-sdk';
import { TroveSandbox } from '../src/index.js';
import { freshNamespace, racingClient, useTrove } from '../../../test/helpers/trove-session.js';

const t = useTrove();
const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array | null) => new TextDecoder().decode(b ?? new Uint8Array());

async function sandbox(client?: TroveClient): Promise<TroveSandbox> {
  return TroveSandbox.create({ client: client ?? t.client, namespace: freshNamespace('files') });
}

describe('ls', () => {
  let sb: TroveSandbox;
  beforeAll(async () => {
    sb = await sandbox();
    await sb.uploadFiles([
      ['/b.txt', encode('bb')],
      ['/a.txt', encode('a')],
      ['/dir/inner.txt', encode('i')],
      ['/dir/sub/deep.txt', encode('d')],
    ]);
  });

  it('lists a directory: directories with a trailing slash first, then files, with sizes and times', async () => {
    const r = await sb.ls('/');
    expect(r.error).toBeUndefined();
    expect(r.files!.map((f) => [f.path, f.is_dir, f.size])).toEqual([
      ['/dir/', true, 0],
      ['/a.txt', false, 1],
      ['/b.txt', false, 2],
    ]);
    for (const f of r.files!) expect(f.modified_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('lists a subdirectory with full agent paths, with or without a trailing slash', async () => {
    const expected = ['/dir/sub/', '/dir/inner.txt'];
    expect((await sb.ls('/dir')).files!.map((f) => f.path)).toEqual(expected);
    expect((await sb.ls('/dir/')).files!.map((f) => f.path)).toEqual(expected);
    expect((await sb.ls('dir')).files!.map((f) => f.path)).toEqual(expected);
  });

  it('reports a missing directory and a file', async () => {
    expect(await sb.ls('/nope')).toEqual({ error: "Directory '/nope' not found" });
    expect(await sb.ls('/a.txt')).toEqual({ error: "'/a.txt' is not a directory" });
  });
});

describe('read', () => {
  let sb: TroveSandbox;
  beforeAll(async () => {
    sb = await sandbox();
    const lines = Array.from({ length: 10 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    await sb.uploadFiles([
      ['/ten.txt', encode(lines)],
      ['/empty.txt', new Uint8Array()],
      ['/no-newline.txt', encode('one\ntwo')],
      ['/pic.png', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 255])],
    ]);
  });

  it('reads the first lines with pagination fields', async () => {
    expect(await sb.read('/ten.txt', 0, 3)).toEqual({
      content: 'line 1\nline 2\nline 3',
      mimeType: 'text/plain',
      totalLines: 10,
      startLine: 1,
      endLine: 3,
      nextOffset: 3,
    });
  });

  it('reads a window in the middle and the end without nextOffset', async () => {
    expect(await sb.read('/ten.txt', 8, 5)).toEqual({
      content: 'line 9\nline 10\n',
      mimeType: 'text/plain',
      totalLines: 10,
      startLine: 9,
      endLine: 10,
    });
    expect((await sb.read('/no-newline.txt')).content).toBe('one\ntwo');
  });

  it('refuses an offset past the end, and says when a file is empty', async () => {
    expect(await sb.read('/ten.txt', 10, 5)).toEqual({ error: 'Line offset 10 exceeds file length (10 lines)' });
    expect(await sb.read('/empty.txt')).toEqual({
      content: 'System reminder: File exists but has empty contents',
      mimeType: 'text/plain',
    });
  });

  it('returns a binary file whole as bytes with its MIME type', async () => {
    const r = await sb.read('/pic.png', 5, 1);
    expect(r.mimeType).toBe('image/png');
    expect(r.content).toBeInstanceOf(Uint8Array);
    expect([...(r.content as Uint8Array)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0, 255]);
  });

  it('reports missing files, directories and bad paths', async () => {
    expect(await sb.read('/missing.txt')).toEqual({ error: "File '/missing.txt' not found" });
    await sb.write('/d/x.txt', 'x');
    expect(await sb.read('/d')).toEqual({ error: "File '/d' not found" });
    expect((await sb.read('/../etc/passwd')).error).toMatch(/'\.\.' is not allowed/);
  });

  it('readRaw gives FileData with the modification time', async () => {
    const text = await sb.readRaw('/no-newline.txt');
    expect(text.data).toMatchObject({ content: 'one\ntwo', mimeType: 'text/plain' });
    expect(text.data!.modified_at).toMatch(/Z$/);
    const bin = await sb.readRaw('/pic.png');
    expect(bin.data).toMatchObject({ mimeType: 'image/png' });
    expect([...(bin.data!.content as Uint8Array)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0, 255]);
    expect(await sb.readRaw('/missing.txt')).toEqual({ error: "File '/missing.txt' not found" });
  });
});

describe('write', () => {
  it('creates files with their parents and replaces existing ones', async () => {
    const sb = await sandbox();
    expect(await sb.write('/a/b/c.txt', 'first')).toEqual({ path: '/a/b/c.txt', filesUpdate: null });
    expect(await sb.write('/a/b/c.txt', 'second')).toEqual({ path: '/a/b/c.txt', filesUpdate: null });
    expect(await sb.client.readText('a/b/c.txt')).toBe('second');
  });

  it('decodes base64 for binary extensions, as write_file sends images', async () => {
    const sb = await sandbox();
    const bytes = randomBytes(300);
    expect((await sb.write('/img/x.png', bytes.toString('base64'))).error).toBeUndefined();
    expect(Buffer.from(await sb.client.readBytes('img/x.png')).equals(bytes)).toBe(true);
  });

  it('refuses a directory, the root and bad paths', async () => {
    const sb = await sandbox();
    await sb.write('/d/x.txt', 'x');
    expect(await sb.write('/d', 'x')).toEqual({ error: "Cannot write to '/d': it is a directory" });
    expect(await sb.write('/', 'x')).toEqual({ error: "Cannot write to '/': it is the root directory" });
    expect((await sb.write('/a/../../x', 'x')).error).toMatch(/'\.\.' is not allowed/);
    expect((await sb.write('/d/x.txt/under', 'x')).error).toMatch(/^Error writing file '\/d\/x.txt\/under': /);
  });

  it('keeps a file named like the workspace directory apart from the root', async () => {
    const sb = await sandbox();
    await sb.write('/workspace/inner.txt', 'nested');
    expect((await sb.ls('/')).files!.map((f) => f.path)).toEqual(['/workspace/']);
    expect((await sb.read('/workspace/inner.txt')).content).toBe('nested');
    expect((await sb.execute('cat workspace/inner.txt')).output).toBe('nested');
  });
});

describe('edit', () => {
  it('replaces one occurrence', async () => {
    const sb = await sandbox();
    await sb.write('/f.py', 'def a():\n    return 1\n');
    expect(await sb.edit('/f.py', 'return 1', 'return 2')).toEqual({
      path: '/f.py',
      filesUpdate: null,
      occurrences: 1,
    });
    expect(await sb.client.readText('f.py')).toBe('def a():\n    return 2\n');
  });

  it('refuses an ambiguous edit unless replaceAll, then replaces every occurrence', async () => {
    const sb = await sandbox();
    await sb.write('/f.txt', 'x = 1\ny = 1\n');
    expect((await sb.edit('/f.txt', '1', '2')).error).toBe(
      "Error: String '1' has multiple occurrences (appears 2 times) in file. Use replace_all=True to replace all instances, or provide a more specific string with surrounding context.",
    );
    expect(await sb.client.readText('f.txt')).toBe('x = 1\ny = 1\n');
    expect(await sb.edit('/f.txt', '1', '2', true)).toEqual({ path: '/f.txt', filesUpdate: null, occurrences: 2 });
    expect(await sb.client.readText('f.txt')).toBe('x = 2\ny = 2\n');
  });

  it('reports a missing string, a missing file and an empty oldString', async () => {
    const sb = await sandbox();
    await sb.write('/f.txt', 'content');
    expect(await sb.edit('/f.txt', 'absent', 'x')).toEqual({ error: "Error: String not found in file: 'absent'" });
    expect(await sb.edit('/nope.txt', 'a', 'b')).toEqual({ error: "Error: File '/nope.txt' not found" });
    expect(await sb.edit('/f.txt', '', 'b')).toEqual({
      error: 'Error: oldString cannot be empty when file has content',
    });
  });

  it('fills an empty file from an empty oldString', async () => {
    const sb = await sandbox();
    await sb.write('/empty.txt', '');
    expect(await sb.edit('/empty.txt', '', 'new text')).toEqual({
      path: '/empty.txt',
      filesUpdate: null,
      occurrences: 1,
    });
    expect(await sb.client.readText('empty.txt')).toBe('new text');
  });

  it('keeps unicode intact', async () => {
    const sb = await sandbox();
    await sb.write('/u.md', 'Grüße 👋 — 日本語\n');
    expect((await sb.edit('/u.md', '👋', '🎉')).occurrences).toBe(1);
    expect(await sb.client.readText('u.md')).toBe('Grüße 🎉 — 日本語\n');
  });

  it('does not overwrite a change made between its read and its write: the edit is made on the new content', async () => {
    // A client whose first conditional write is preceded by another writer's change to the same file.
    const { client: racing, raced } = racingClient(
      t,
      freshNamespace('race'),
      'header added by someone else\ncounter = 1\n',
    );
    const sb = new TroveSandbox({ client: racing });
    await sb.write('/c.py', 'counter = 1\n');
    expect(await sb.edit('/c.py', 'counter = 1', 'counter = 2')).toEqual({
      path: '/c.py',
      filesUpdate: null,
      occurrences: 1,
    });
    expect(raced()).toBe(true);
    expect(await racing.readText('c.py')).toBe('header added by someone else\ncounter = 2\n');
  });
});

describe('delete', () => {
  it('deletes a file and a directory recursively; a missing path is an error', async () => {
    const sb = await sandbox();
    await sb.uploadFiles([
      ['/f.txt', encode('f')],
      ['/d/a/b.txt', encode('b')],
    ]);
    expect(await sb.delete('/f.txt')).toEqual({ path: '/f.txt', filesUpdate: null });
    expect(await sb.delete('/d')).toEqual({ path: '/d', filesUpdate: null });
    expect((await sb.ls('/')).files).toEqual([]);
    expect(await sb.delete('/d')).toEqual({ error: "Error: '/d' not found" });
  });

  it('empties the namespace for /', async () => {
    const sb = await sandbox();
    await sb.uploadFiles([
      ['/a.txt', encode('a')],
      ['/d/b.txt', encode('b')],
    ]);
    expect(await sb.delete('/')).toEqual({ path: '/', filesUpdate: null });
    expect((await sb.ls('/')).files).toEqual([]);
  });
});

describe('uploadFiles and downloadFiles', () => {
  it('gives one result per file in order, with partial success', async () => {
    const sb = await sandbox();
    const up = await sb.uploadFiles([
      ['/ok.txt', encode('ok')],
      ['/ok.txt/child', encode('under a file')],
      ['/../escape.txt', encode('x')],
      ['/', encode('root')],
      ['/also-ok.bin', new Uint8Array([1, 2, 3])],
    ]);
    expect(up).toEqual([
      { path: '/ok.txt', error: null },
      { path: '/ok.txt/child', error: 'invalid_path' },
      { path: '/../escape.txt', error: 'invalid_path' },
      { path: '/', error: 'is_directory' },
      { path: '/also-ok.bin', error: null },
    ]);
    await sb.write('/dir/x.txt', 'x');
    const down = await sb.downloadFiles(['/ok.txt', '/missing.txt', '/dir', '/../x', '/also-ok.bin']);
    expect(down.map((d) => [d.path, d.error])).toEqual([
      ['/ok.txt', null],
      ['/missing.txt', 'file_not_found'],
      ['/dir', 'is_directory'],
      ['/../x', 'invalid_path'],
      ['/also-ok.bin', null],
    ]);
    expect(decode(down[0]!.content)).toBe('ok');
    expect(down[1]!.content).toBeNull();
    expect([...down[4]!.content!]).toEqual([1, 2, 3]);
  });

  it('round-trips large and binary files exactly', async () => {
    const sb = await sandbox();
    const big = randomBytes(24 * 1024 * 1024);
    const manyLines = encode(Array.from({ length: 50_000 }, (_, i) => `row ${i}`).join('\n') + '\n');
    expect(
      await sb.uploadFiles([
        ['/big.bin', big],
        ['/rows.csv', manyLines],
      ]),
    ).toEqual([
      { path: '/big.bin', error: null },
      { path: '/rows.csv', error: null },
    ]);
    const [bin, rows] = await sb.downloadFiles(['/big.bin', '/rows.csv']);
    expect(Buffer.from(bin!.content!).equals(big)).toBe(true);
    expect(Buffer.from(rows!.content!).equals(Buffer.from(manyLines))).toBe(true);
    // A window deep in a large text file.
    expect(await sb.read('/rows.csv', 49_998, 10)).toMatchObject({
      content: 'row 49998\nrow 49999\n',
      totalLines: 50_000,
      startLine: 49_999,
      endLine: 50_000,
    });
    expect((await sb.execute('wc -c < big.bin')).output).toBe(String(big.length));
  });

  it('handles unicode, spaces and URL-special characters in names', async () => {
    const sb = await sandbox();
    const names = ['/ünïcödé/日本語.txt', '/with space/a b.txt', '/odd/50% off?#.txt', '/emoji/🚀.md'];
    const up = await sb.uploadFiles(names.map((n) => [n, encode(`content of ${n}`)] as [string, Uint8Array]));
    expect(up.every((u) => u.error === null)).toBe(true);
    const down = await sb.downloadFiles(names);
    expect(down.map((d) => decode(d.content))).toEqual(names.map((n) => `content of ${n}`));
    expect((await sb.ls('/ünïcödé')).files!.map((f) => f.path)).toEqual(['/ünïcödé/日本語.txt']);
    expect((await sb.execute('cat "emoji/🚀.md"')).output).toBe('content of /emoji/🚀.md');
  });
});
