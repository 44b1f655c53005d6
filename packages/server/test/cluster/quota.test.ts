/**
 * Quotas in cluster mode: every node measures the shared tree, so a quota
 * holds across nodes; TROVE_QUOTA_CACHE_MS bounds how stale a node's figure
 * may be (0: measured before every write).
 */
import { describe, expect, it } from 'vitest';
import { randomKey, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { pgAvailable, useSharedState } from './support.js';

const pgState = await pgAvailable();

describe.skipIf(!pgState.ok)(`quotas across two nodes${pgState.ok ? '' : ` — SKIPPED: ${pgState.reason}`}`, () => {
  const shared = useSharedState('trove-cluster-quota');
  const nodes = shared.nodes;

  it('a write through one node counts against the quota on the other at once (TROVE_QUOTA_CACHE_MS=0)', async () => {
    const { db, dataDir } = await shared.create();
    const keys = { adminKey: randomKey(), runtimeKey: randomKey() };
    const env = { TROVE_DATABASE_URL: db.url, TROVE_QUOTA_FILES: '3', TROVE_QUOTA_CACHE_MS: '0' };
    const a = await startServer({ dataDir, ...keys, env });
    nodes.push(a);
    const b = await startServer({ dataDir, ...keys, env });
    nodes.push(b);
    const write = (node: StartedServer, path: string) =>
      fetch(`${node.baseUrl}/write`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys.runtimeKey}`, 'x-namespace': 'q', 'content-type': 'application/json' },
        body: JSON.stringify({ path, content: 'x' }),
      });

    expect((await write(a, 'one.txt')).status).toBe(200);
    expect((await write(a, 'two.txt')).status).toBe(200);
    expect((await write(b, 'three.txt')).status).toBe(200);
    // Node A's own writes say 2 files; the third came through B. A must see it.
    const refused = await write(a, 'four.txt');
    expect(refused.status).toBe(413);
    expect(await refused.json()).toMatchObject({ code: 'quota_exceeded' });
    expect((await write(b, 'four.txt')).status).toBe(413);
    // Replacing an existing file adds no file.
    expect((await write(a, 'one.txt')).status).toBe(200);
  }, 120_000);
});
