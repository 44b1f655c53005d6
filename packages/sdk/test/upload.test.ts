/** upload(): every accepted input type, streamed, with progress, against the real server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { startServer, type StartedServer } from '../../../test/helpers/server.js';
import { TroveClient, type UploadProgress } from '../src/index.js';

let server: StartedServer;
let trove: TroveClient;
let tmp: string;

beforeAll(async () => {
  server = await startServer();
  trove = new TroveClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl, namespace: 'upload-test' });
  tmp = mkdtempSync(join(tmpdir(), 'trove-sdk-upload-'));
});
afterAll(async () => {
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const data = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) % 256);

function expectProgress(events: UploadProgress[], total: number | undefined) {
  expect(events.length).toBeGreaterThanOrEqual(2);
  expect(events[0]!.loaded).toBe(0);
  for (let i = 1; i < events.length; i++) expect(events[i]!.loaded).toBeGreaterThan(events[i - 1]!.loaded);
  if (total !== undefined) {
    expect(events.at(-1)).toEqual({ loaded: total, total });
    for (const e of events) expect(e.total).toBe(total);
  } else {
    for (const e of events) expect(e).not.toHaveProperty('total');
  }
}

async function roundTrip(path: string, expected: Uint8Array) {
  const back = await trove.readBytes(path);
  expect(Buffer.from(back).equals(Buffer.from(expected))).toBe(true);
}

describe('upload', () => {
  it('Uint8Array, with chunked progress up to the total', async () => {
    const bytes = data(300_000);
    const progress: UploadProgress[] = [];
    const r = await trove.upload('u/bytes.bin', bytes, { onProgress: (p) => progress.push(p) });
    expect(r).toEqual({
      path: 'workspace/u/bytes.bin',
      sizeBytes: 300_000,
      etag: expect.stringMatching(/^"[0-9a-f.-]+"$/),
    });
    expectProgress(progress, 300_000);
    // 64 KiB chunks: 5 chunks plus the initial report.
    expect(progress).toHaveLength(6);
    await roundTrip('u/bytes.bin', bytes);
  });

  it('string (as UTF-8)', async () => {
    const progress: UploadProgress[] = [];
    const r = await trove.upload('u/text.txt', 'héllo wörld', { onProgress: (p) => progress.push(p) });
    expect(r.sizeBytes).toBe(13);
    expectProgress(progress, 13);
    expect(await trove.readText('u/text.txt')).toBe('héllo wörld');
  });

  it('ArrayBuffer, a Buffer and a DataView', async () => {
    const bytes = data(1000);
    await trove.upload('u/ab.bin', bytes.slice().buffer);
    await roundTrip('u/ab.bin', bytes);
    await trove.upload('u/buf.bin', Buffer.from(bytes));
    await roundTrip('u/buf.bin', bytes);
    const padded = new Uint8Array(1010);
    padded.set(bytes, 5);
    await trove.upload('u/view.bin', new DataView(padded.buffer, 5, 1000));
    await roundTrip('u/view.bin', bytes);
  });

  it('Blob, with and without progress', async () => {
    const bytes = data(150_000);
    const progress: UploadProgress[] = [];
    await trove.upload('u/blob.bin', new Blob([bytes]), { onProgress: (p) => progress.push(p) });
    expectProgress(progress, 150_000);
    await roundTrip('u/blob.bin', bytes);
    await trove.upload('u/blob2.bin', new Blob(['plain blob']));
    expect(await trove.readText('u/blob2.bin')).toBe('plain blob');
  });

  it('a Web ReadableStream of unknown length, and with size for the total', async () => {
    const bytes = data(200_000);
    const stream = () =>
      new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < bytes.length; i += 50_000) c.enqueue(bytes.slice(i, i + 50_000));
          c.close();
        },
      });
    const unknown: UploadProgress[] = [];
    await trove.upload('u/stream.bin', stream(), { onProgress: (p) => unknown.push(p) });
    expectProgress(unknown, undefined);
    expect(unknown.at(-1)!.loaded).toBe(200_000);
    await roundTrip('u/stream.bin', bytes);

    const sized: UploadProgress[] = [];
    await trove.upload('u/stream2.bin', stream(), { size: bytes.length, onProgress: (p) => sized.push(p) });
    expectProgress(sized, 200_000);
  });

  it('a Node file stream', async () => {
    const bytes = data(500_000);
    const file = join(tmp, 'src.bin');
    writeFileSync(file, bytes);
    const progress: UploadProgress[] = [];
    const r = await trove.upload('u/file.bin', createReadStream(file), {
      size: bytes.length,
      onProgress: (p) => progress.push(p),
    });
    expect(r.sizeBytes).toBe(500_000);
    expectProgress(progress, 500_000);
    await roundTrip('u/file.bin', bytes);
  });

  it('an async iterable of strings and bytes (Readable.from, generators)', async () => {
    async function* gen() {
      yield 'line 1\n';
      yield new TextEncoder().encode('line 2\n');
      yield 'line 3\n';
    }
    await trove.upload('u/gen.txt', gen());
    expect(await trove.readText('u/gen.txt')).toBe('line 1\nline 2\nline 3\n');
    await trove.upload('u/readable.txt', Readable.from(['a', 'b', 'c']));
    expect(await trove.readText('u/readable.txt')).toBe('abc');
  });

  it('an empty body', async () => {
    const progress: UploadProgress[] = [];
    expect(await trove.upload('u/empty', new Uint8Array(0), { onProgress: (p) => progress.push(p) })).toEqual({
      path: 'workspace/u/empty',
      sizeBytes: 0,
      etag: expect.stringMatching(/^"[0-9a-f.-]+"$/),
    });
    expect(progress).toEqual([{ loaded: 0, total: 0 }]);
    expect(await trove.readText('u/empty')).toBe('');
  });

  it('replaces an existing file', async () => {
    await trove.upload('u/replace.txt', 'first version');
    await trove.upload('u/replace.txt', 'second');
    expect(await trove.readText('u/replace.txt')).toBe('second');
  });

  it('names with ?, #, %, spaces and unicode round-trip', async () => {
    const names = ['what?.txt', 'hash#tag.txt', '100%.txt', 'with space.txt', 'ünï cødé ✓.txt', 'a+b&c=d.txt'];
    for (const name of names) {
      const r = await trove.upload(`odd/${name}`, `content of ${name}`);
      expect(r.path).toBe(`workspace/odd/${name}`);
      expect(await trove.readText(`odd/${name}`)).toBe(`content of ${name}`);
      expect((await trove.readFile(`odd/${name}`)).content).toBe(`content of ${name}`);
    }
    const listed = (await trove.listDir('odd')).entries.map((e) => e.name).sort();
    expect(listed).toEqual([...names].sort());
    await trove.delete('odd/what?.txt');
    await expect(trove.readText('odd/what?.txt')).rejects.toMatchObject({ status: 404 });
  });

  it('rejects unsupported data with a TypeError', async () => {
    await expect(trove.upload('u/x', 42 as unknown as string)).rejects.toThrow(TypeError);
    await expect(trove.write('u/x', new Uint8Array(1) as unknown as string)).rejects.toThrow(/use upload\(\)/);
  });
});
