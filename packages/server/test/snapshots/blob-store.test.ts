import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LocalBlobStore } from '../../src/snapshots/blob-store.js';
import { AppError } from '../../src/errors.js';
import { pseudoRandom } from './support.js';

let dir: string;
let store: LocalBlobStore;

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

beforeAll(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), 'trove-blobs-'));
  store = new LocalBlobStore(join(dir, 'blobs', 'snapshots'));
  await store.init();
});

afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('LocalBlobStore', () => {
  it('stores a stream and streams it back', async () => {
    const data = pseudoRandom(3 * 1024 * 1024 + 17, 5);
    const res = await store.put('ws-1/snap-a.tar.gz', Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
    expect(res).toEqual({ sizeBytes: data.length });
    expect(await store.exists('ws-1/snap-a.tar.gz')).toBe(true);
    expect((await readAll(await store.get('ws-1/snap-a.tar.gz'))).equals(data)).toBe(true);
    // Blobs are private to the server.
    expect((await fsp.stat(join(store.dir, 'ws-1', 'snap-a.tar.gz'))).mode & 0o777).toBe(0o600);
  });

  it('accepts async iterables of Uint8Array', async () => {
    async function* gen() {
      yield new Uint8Array([1, 2, 3]);
      yield new Uint8Array([4]);
    }
    expect(await store.put('k', gen())).toEqual({ sizeBytes: 4 });
    expect([...(await readAll(await store.get('k')))]).toEqual([1, 2, 3, 4]);
  });

  it('replaces an existing blob atomically', async () => {
    await store.put('ws-1/replace', Readable.from([Buffer.from('first')]));
    const reader = await store.get('ws-1/replace'); // opened before the replacement
    await store.put('ws-1/replace', Readable.from([Buffer.from('second version')]));
    expect((await readAll(reader)).toString()).toBe('first');
    expect((await readAll(await store.get('ws-1/replace'))).toString()).toBe('second version');
  });

  it('answers snapshot_not_found for a missing blob', async () => {
    const err = await store.get('ws-1/missing').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({
      code: 'snapshot_not_found',
      status: 404,
      detail: 'Snapshot data not found: ws-1/missing',
    });
    expect(await store.exists('ws-1/missing')).toBe(false);
  });

  it('deletes idempotently', async () => {
    await store.put('ws-1/del', Readable.from([Buffer.from('x')]));
    await store.delete('ws-1/del');
    await store.delete('ws-1/del');
    await store.delete('never/existed');
    expect(await store.exists('ws-1/del')).toBe(false);
  });

  it('leaves neither a blob nor a temp file when the body fails', async () => {
    const failing = Readable.from(
      (async function* () {
        yield Buffer.alloc(100_000, 1);
        throw new Error('producer died');
      })(),
    );
    await expect(store.put('ws-1/broken', failing)).rejects.toThrow('producer died');
    expect(await store.exists('ws-1/broken')).toBe(false);
    expect(await fsp.readdir(join(store.dir, '.tmp'))).toEqual([]);
  });

  it('refuses keys that could leave the store or hit its temp directory', async () => {
    for (const key of ['../escape', '/abs', 'a/../b', '.tmp/x', 'a//b', '', 'a/', 'x\0y', 'sp ace', '.hidden']) {
      await expect(store.put(key, Readable.from([Buffer.from('x')]))).rejects.toThrow(TypeError);
      await expect(store.get(key)).rejects.toThrow(TypeError);
      await expect(store.delete(key)).rejects.toThrow(TypeError);
    }
  });

  it('init() sweeps stale temp files left by a crash, not fresh ones', async () => {
    const tmp = join(store.dir, '.tmp');
    await fsp.writeFile(join(tmp, 'stale'), 'x');
    await fsp.utimes(join(tmp, 'stale'), new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
    await fsp.writeFile(join(tmp, 'fresh'), 'x');
    await store.init();
    expect(await fsp.readdir(tmp)).toEqual(['fresh']);
    await fsp.rm(join(tmp, 'fresh'));
  });
});
