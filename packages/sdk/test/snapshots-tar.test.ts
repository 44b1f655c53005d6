/** snapshots.export() and snapshots.import() against the real server: every body form, both tar kinds, errors. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReadStream, mkdtempSync, openAsBlob, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startServer, type StartedServer } from '../../../test/helpers/server.js';
import {
  NotFoundError,
  PermissionDeniedError,
  TroveClient,
  UnprocessableEntityError,
  type Snapshot,
  type UploadProgress,
} from '../src/index.js';

let server: StartedServer;
let trove: TroveClient;
let tmp: string;
let source: Snapshot;
let archive: Buffer;

async function bytesOf(iterable: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of iterable) chunks.push(c);
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  server = await startServer();
  trove = new TroveClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl, namespace: 'tar-sdk' });
  tmp = mkdtempSync(join(tmpdir(), 'trove-sdk-tar-'));
  await trove.write('notes/a.txt', 'alpha');
  await trove.upload(
    'bin/blob.bin',
    Uint8Array.from({ length: 300_000 }, (_, i) => (i * 13) % 251),
  );
  source = await trove.snapshots.create({ label: 'source' });
  archive = await bytesOf(await trove.snapshots.export(source.snapshotId));
});
afterAll(async () => {
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('snapshots.export', () => {
  it('streams the archive: async iterable or Web stream, with its size', async () => {
    expect(archive.length).toBe(source.sizeBytes);
    expect([archive[0], archive[1]]).toEqual([0x1f, 0x8b]); // gzip
    const again = await trove.snapshots.export(source.snapshotId);
    expect(again.sizeBytes).toBe(source.sizeBytes);
    const viaBody = Buffer.from(await new Response(again.body).arrayBuffer());
    expect(viaBody.equals(archive)).toBe(true);
  });

  it('stopping early cancels the download', async () => {
    const exp = await trove.snapshots.export(source.snapshotId);
    for await (const chunk of exp) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    expect(exp.body.locked).toBe(false);
    await expect(exp.body.getReader().read()).resolves.toEqual({ done: true, value: undefined });
  });

  it('an unknown id, or another namespace’s, is NotFoundError', async () => {
    await expect(trove.snapshots.export('snap-000000000000000000000000')).rejects.toBeInstanceOf(NotFoundError);
    await expect(trove.withNamespace('tar-sdk-other').snapshots.export(source.snapshotId)).rejects.toMatchObject({
      status: 404,
      code: 'snapshot_not_found',
    });
  });
});

describe('snapshots.import', () => {
  it('imports bytes, a Blob, a Node stream and a plain tar; each restores the source tree', async () => {
    const ns = trove.withNamespace('tar-sdk-in');
    const file = join(tmp, 'src.tgz');
    writeFileSync(file, archive);
    const progress: UploadProgress[] = [];
    const fromBytes = await ns.snapshots.import(new Uint8Array(archive), { label: 'bytes' });
    const fromBlob = await ns.snapshots.import(await openAsBlob(file), { onProgress: (p) => progress.push(p) });
    const fromStream = await ns.snapshots.import(createReadStream(file), { label: null });
    const fromTar = await ns.snapshots.import(gunzipSync(archive), {
      contentType: 'application/x-tar',
      label: 'plain',
    });
    expect(fromBytes).toEqual({
      snapshotId: expect.stringMatching(/^snap-/),
      namespace: 'tar-sdk-in',
      label: 'bytes',
      sizeBytes: source.sizeBytes,
      fileCount: 2,
      createdAt: expect.any(String),
    });
    expect([fromBlob.label, fromStream.label, fromTar.label]).toEqual([null, null, 'plain']);
    expect(progress.at(-1)).toEqual({ loaded: archive.length, total: archive.length });
    for (const s of [fromBytes, fromBlob, fromStream, fromTar]) {
      expect((await bytesOf(await ns.snapshots.export(s.snapshotId))).equals(archive)).toBe(true);
    }
    await ns.write('notes/a.txt', 'changed');
    expect(await ns.snapshots.restore(fromTar.snapshotId)).toEqual({ filesRestored: 2 });
    expect(await ns.readText('notes/a.txt')).toBe('alpha');

    const created = (await ns.events.list({ namespace: 'tar-sdk-in', types: ['snapshot.created'] })).events;
    expect(created.map((e) => e.data)).toEqual([
      { snapshotId: fromTar.snapshotId, label: 'plain', imported: true },
      { snapshotId: fromStream.snapshotId, label: null, imported: true },
      { snapshotId: fromBlob.snapshotId, label: null, imported: true },
      { snapshotId: fromBytes.snapshotId, label: 'bytes', imported: true },
    ]);
  });

  it('a refused archive is UnprocessableEntityError with the reason; a wrong key kind is PermissionDeniedError', async () => {
    const err = await trove.snapshots
      .import(new TextEncoder().encode('not an archive at all'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnprocessableEntityError);
    expect(err).toMatchObject({ status: 422, code: 'snapshot_invalid' });
    expect((err as Error).message).toContain('Archive cannot be imported');
    const admin = new TroveClient({ apiKey: server.adminKey, baseUrl: server.baseUrl, namespace: 'tar-sdk' });
    await expect(admin.snapshots.import(archive)).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(admin.snapshots.export(source.snapshotId)).rejects.toBeInstanceOf(PermissionDeniedError);
  });
});
