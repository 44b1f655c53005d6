/**
 * A fresh cluster's nodes are usually started together (a deployment rolls
 * out N replicas at once). They race to migrate the empty database and to
 * bootstrap the first workspace: every node must come up, the schema must be
 * migrated once, and exactly one workspace (with the preset keys) must exist.
 */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomKey, startServer } from '../../../../test/helpers/server.js';
import { pgAvailable, useSharedState } from './support.js';

const pgState = await pgAvailable();

describe.skipIf(!pgState.ok)(
  `nodes starting at once on an empty database${pgState.ok ? '' : ` — SKIPPED: ${pgState.reason}`}`,
  () => {
    const shared = useSharedState('trove-cluster-start');
    const nodes = shared.nodes;

    it('all come up, migrate once and bootstrap exactly one workspace', async () => {
      const { db, dataDir } = await shared.create();
      const adminKey = randomKey();
      const runtimeKey = randomKey();
      const started = await Promise.allSettled(
        [1, 2, 3].map(() => startServer({ dataDir, adminKey, runtimeKey, env: { TROVE_DATABASE_URL: db.url } })),
      );
      for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value);
      const failures = started.flatMap((s) => (s.status === 'rejected' ? [String(s.reason)] : []));
      expect(failures).toEqual([]);

      expect(nodes.filter((n) => n.output().includes('Created workspace'))).toHaveLength(1);
      expect(new Set(nodes.map((n) => n.workspaceId)).size).toBe(1);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        expect((await client.query('select id from workspaces')).rows).toEqual([{ id: nodes[0]!.workspaceId }]);
        const names = (await client.query<{ name: string }>('select name from kysely_migration')).rows.map(
          (r) => r.name,
        );
        expect(new Set(names).size).toBe(names.length);
        expect((await client.query('select count(*)::int as n from api_keys')).rows[0]).toEqual({ n: 2 });
      } finally {
        await client.end();
      }
      for (const n of nodes) {
        const me = await fetch(n.baseUrl + '/v1/me', { headers: { authorization: `Bearer ${runtimeKey}` } });
        expect(me.status).toBe(200);
      }
    });
  },
);
