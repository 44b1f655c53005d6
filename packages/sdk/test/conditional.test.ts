/** Optimistic concurrency: `etag` from reads and writes, `ifMatch` / `ifNoneMatch` on writes (412). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../../../test/helpers/server.js';
import { PreconditionFailedError, TroveClient } from '../src/index.js';

let server: StartedServer;
let trove: TroveClient;

beforeAll(async () => {
  server = await startServer();
  trove = new TroveClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl, namespace: 'cond-sdk' });
});
afterAll(async () => {
  await server?.close();
});

describe('conditional writes', () => {
  it('returns the version of what was written and read, and refuses a stale ifMatch', async () => {
    const first = await trove.write('doc.md', 'v1');
    expect(first.etag).toMatch(/^"[0-9a-f.-]+"$/);
    const read = await trove.readBytesFull('doc.md');
    expect(read.etag).toBe(first.etag);
    const second = await trove.upload('doc.md', 'v2', { ifMatch: read.etag! });
    expect(second.etag).not.toBe(first.etag);
    const stale = trove.write('doc.md', 'v3', { ifMatch: first.etag! });
    await expect(stale).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(stale).rejects.toMatchObject({ status: 412, code: 'precondition_failed' });
    expect(new TextDecoder().decode(await trove.readBytes('doc.md'))).toBe('v2');
  });

  it('creates only when the file does not exist with ifNoneMatch: "*"', async () => {
    await trove.write('once.txt', 'first', { ifNoneMatch: '*' });
    await expect(trove.upload('once.txt', 'second', { ifNoneMatch: '*' })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    expect(new TextDecoder().decode(await trove.readBytes('once.txt'))).toBe('first');
  });
});
