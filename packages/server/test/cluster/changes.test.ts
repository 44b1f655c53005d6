/**
 * Cluster mode: each node records the changes its own sandboxes make. Two real server processes share one
 * PostgreSQL database and one data dir (here on one machine, so each node's watcher sees both nodes'
 * writes): a command's changes must be recorded once, by the node that ran it, attributed to it, even
 * when both nodes run commands in the same namespace at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTestDatabase,
  randomKey,
  startServer,
  type StartedServer,
  type TestDatabase,
} from '../../../../test/helpers/server.js';
import { isRoot, needsRoot } from '../../../../test/helpers/root.js';
import { client } from '../changes/support.js';
import { pgAvailable } from './support.js';

const pgState = await pgAvailable();
const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const changeTypes = new Set(['file.written', 'file.deleted', 'dir.created', 'dir.deleted', 'files.changed']);

describe.skipIf(!pgState.ok || !hasBwrap || !isRoot)(
  `two nodes record their own commands' changes${pgState.ok ? needsRoot('fanotify') : ` — SKIPPED: ${pgState.reason}`}`,
  () => {
    let db: TestDatabase;
    let dataDir: string;
    let a: StartedServer;
    let b: StartedServer;
    const adminKey = randomKey();
    const runtimeKey = randomKey();

    beforeAll(async () => {
      db = await createTestDatabase();
      dataDir = mkdtempSync(join(tmpdir(), 'trove-cluster-changes-'));
      const env = { TROVE_DATABASE_URL: db.url, TROVE_CHANGES: 'fanotify' };
      a = await startServer({ dataDir, adminKey, runtimeKey, env });
      b = await startServer({ dataDir, adminKey, runtimeKey, env });
    });
    afterAll(async () => {
      for (const s of [a, b]) await s?.close().catch(() => {});
      await db?.drop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it('commands on both nodes in one namespace at once: every change once, credited to the command that made it', async () => {
      const onA = client(a, 'shared');
      const onB = client(b, 'shared');
      // Short-lived processes (touch, mkdir, rm) on both nodes, in the same namespace, at the same time.
      const script = (tag: string) =>
        `cd workspace && mkdir ${tag} && for i in $(seq 1 40); do touch ${tag}/f$i; echo x > ${tag}/g$i; done; rm ${tag}/f1 ${tag}/f2`;
      await Promise.all([onA.exec(script('a')), onB.exec(script('b'))]);
      const events = await onA.events();
      const completed = events.filter((e) => e.type === 'exec.completed');
      expect(completed).toHaveLength(2);
      const changes = events.filter((e) => changeTypes.has(e.type));
      // Each path once: no node recorded the other's changes.
      const paths = changes.map((e) => e.data.path as string);
      expect(new Set(paths).size).toBe(paths.length);
      expect(paths).toHaveLength(2 * (1 + 38 + 40));
      // Credited to the command (and so the node) that made it: a's paths to one exec, b's to the other.
      for (const tag of ['a', 'b']) {
        const ids = new Set(
          changes.filter((e) => (e.data.path as string).startsWith(`workspace/${tag}`)).map((e) => e.data.exec_id),
        );
        expect(ids.size).toBe(1);
        expect(completed.map((e) => e.data.exec_id)).toContain([...ids][0]);
      }
      const idOf = (tag: string) =>
        changes.find((e) => (e.data.path as string).startsWith(`workspace/${tag}`))!.data.exec_id;
      expect(idOf('a')).not.toBe(idOf('b'));
    });

    it('a command on node B is recorded by B: its changes precede its exec.completed, read from node A', async () => {
      const onB = client(b, 'only-b');
      await onB.exec('cd workspace && echo hi > from-b.txt');
      const events = await client(a, 'only-b').events();
      expect(events.map((e) => [e.type, e.data.path ?? null])).toEqual([
        ['file.written', 'workspace/from-b.txt'],
        ['exec.completed', null],
      ]);
      expect(events[0]!.data.exec_id).toBe(events[1]!.data.exec_id);
    });
  },
);
