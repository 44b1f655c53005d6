/**
 * kill -9 in the middle of 50 concurrent large writes: after restart every
 * file is either its old or its new full content, the database opens cleanly
 * and no temp file is visible.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';

const N = 50;
const SIZE = 4 * 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let server: StartedServer | undefined;

afterAll(async () => {
  await server?.close();
});

function content(i: number, version: string): Buffer {
  const b = Buffer.alloc(SIZE, `${version}-${i}-`);
  return b;
}

describe('crash safety', () => {
  it('every file is entirely old or entirely new after kill -9 mid-write', async () => {
    const first = await startServer();
    const h = { authorization: `Bearer ${first.runtimeKey}`, 'x-namespace': 'crash' };
    for (let i = 0; i < N; i++) {
      const res = await fetch(`${first.baseUrl}/files/f${i}.bin`, {
        method: 'PUT',
        headers: h,
        body: new Uint8Array(content(i, 'old')),
      });
      expect(res.status).toBe(200);
    }
    // 50 uploads: each sends half of its new content, then stalls; a few finish.
    let halfway = 0;
    let allHalf!: () => void;
    const allHalfSent = new Promise<void>((r) => (allHalf = r));
    const finished: Promise<number | null>[] = [];
    for (let i = 0; i < N; i++) {
      const data = content(i, 'new');
      finished.push(
        new Promise((resolve) => {
          const req = request(
            `${first.baseUrl}/files/f${i}.bin`,
            { method: 'PUT', headers: { ...h, 'content-length': String(SIZE) } },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? null));
            },
          );
          req.on('error', () => resolve(null));
          req.write(data.subarray(0, SIZE / 2), () => {
            if (++halfway === N) allHalf();
          });
          if (i % 10 === 0) req.end(data.subarray(SIZE / 2)); // these may complete before the kill
        }),
      );
    }
    await allHalfSent;
    // Let the completing uploads make progress so the kill lands at varied points.
    await new Promise((r) => setTimeout(r, 300));
    await first.kill('SIGKILL');
    await Promise.all(finished);

    server = await first.restart();
    const h2 = { authorization: `Bearer ${server.runtimeKey}`, 'x-namespace': 'crash' };
    let newCount = 0;
    for (let i = 0; i < N; i++) {
      const got = Buffer.from(await (await fetch(`${server.baseUrl}/files/f${i}.bin`, { headers: h2 })).arrayBuffer());
      const digest = sha(got);
      const isOld = digest === sha(content(i, 'old'));
      const isNew = digest === sha(content(i, 'new'));
      expect(isOld || isNew, `file ${i} is torn (${got.length} bytes)`).toBe(true);
      if (isNew) newCount++;
    }
    // The uploads that were never finished cannot have landed.
    expect(newCount).toBeLessThanOrEqual(N / 10);
    const list = (await (await fetch(`${server.baseUrl}/v1/files?path=workspace/`, { headers: h2 })).json()) as {
      entries: Array<{ name: string }>;
    };
    expect(list.entries).toHaveLength(N);
    const ev = await fetch(`${server.baseUrl}/v1/workspaces/${server.workspaceId}/events?limit=5`, {
      headers: { authorization: `Bearer ${server.adminKey}` },
    });
    expect(ev.status).toBe(200);
    const write = await fetch(`${server.baseUrl}/write`, {
      method: 'POST',
      headers: { ...h2, 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'after.txt', content: 'ok' }),
    });
    expect(write.status).toBe(200);
  }, 180_000);
});
