/**
 * A node starting up finishes or rolls back restores interrupted by a crash.
 * In a cluster, a restore being journalled under `<ws>/.trees/` may instead be
 * alive on another node: that node holds the namespace's exclusive lock (a
 * PostgreSQL advisory lock). A starting node must leave such a restore alone
 * and only recover the ones nobody holds.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { advisoryKey } from '../../src/locks/cluster-locks.js';
import { randomKey, startServer } from '../../../../test/helpers/server.js';
import { pgAvailable, useSharedState } from './support.js';

const pgState = await pgAvailable();

describe.skipIf(!pgState.ok)(
  `restore recovery on a shared data dir${pgState.ok ? '' : ` — SKIPPED: ${pgState.reason}`}`,
  () => {
    const shared = useSharedState('trove-cluster-recovery');
    const nodes = shared.nodes;
    let holder: pg.Client | undefined;

    // Registered after useSharedState's hook, so it runs first: the lock holder goes before the database.
    afterAll(async () => {
      await holder?.end().catch(() => {});
    });

    it('a starting node leaves a restore that another node is running alone, and cleans up a crashed one', async () => {
      const { db, dataDir } = await shared.create();
      const keys = { adminKey: randomKey(), runtimeKey: randomKey() };
      const env = { TROVE_DATABASE_URL: db.url };
      const a = await startServer({ dataDir, ...keys, env });
      nodes.push(a);
      const ws = a.workspaceId;
      for (const ns of ['busy', 'crashed']) {
        const res = await fetch(`${a.baseUrl}/write`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${keys.runtimeKey}`,
            'x-namespace': ns,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ path: 'f.txt', content: ns }),
        });
        expect(res.status).toBe(200);
      }

      // Two restores journalled the way the snapshot engine does it: staging trees under <ws>/.trees.
      const trees = join(dataDir, 'workspaces', ws, '.trees');
      mkdirSync(trees, { recursive: true });
      const live = join(trees, 'aaaaaaaaaaaaaaaa-new-busy');
      const dead = join(trees, 'bbbbbbbbbbbbbbbb-new-crashed');
      for (const dir of [live, dead]) {
        mkdirSync(dir);
        writeFileSync(join(dir, 'f.txt'), 'being extracted');
      }
      // "Another node" is extracting into `live`: it holds the namespace's exclusive lock.
      holder = new pg.Client({ connectionString: db.url });
      await holder.connect();
      await holder.query('select pg_advisory_lock($1::bigint)', [advisoryKey('ns', ws, 'busy')]);

      const b = await startServer({ dataDir, ...keys, env });
      nodes.push(b);
      expect(existsSync(dead), 'the crashed restore was cleaned up').toBe(false);
      expect(existsSync(live), 'the running restore was left alone').toBe(true);

      // Once its node is gone (lock released), it is a crashed restore like any other.
      await holder.end();
      holder = undefined;
      await b.stop();
      nodes.push(await b.restart());
      expect(existsSync(live)).toBe(false);
    }, 120_000);
  },
);
