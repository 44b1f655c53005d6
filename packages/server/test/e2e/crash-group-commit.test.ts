/**
 * kill -9 against the event log's group commit: concurrent writes share a
 * transaction, and whatever was answered survives the kill with its file and
 * its event (and its webhook delivery); a batch cut before its commit leaves
 * none of its events. SQLite, and PostgreSQL in the PostgreSQL pass.
 */
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { api, startServer, usePg, type StartedServer } from '../../../../test/helpers/server.js';
import { eventually } from './webhooks-receiver.js';

const servers: StartedServer[] = [];
afterAll(async () => {
  for (const s of servers.reverse()) await s.close().catch(() => {});
});

interface Envelope {
  id: string;
  type: string;
  created_at: string;
  data: { path: string; size_bytes: number };
}

/** Every event of the given types, oldest first (pages of 200 through next_cursor). */
async function allEvents(s: StartedServer, types: string): Promise<Envelope[]> {
  const admin = api(s, s.adminKey);
  const out: Envelope[] = [];
  let cursor = '';
  for (;;) {
    const res = await admin(
      `/v1/workspaces/${s.workspaceId}/events?types=${types}&limit=200${cursor ? `&cursor=${cursor}` : ''}`,
    );
    expect(res.status).toBe(200);
    const page = (await res.json()) as { events: Envelope[]; next_cursor: string | null };
    out.push(...page.events);
    if (!page.next_cursor) return out.reverse();
    cursor = page.next_cursor;
  }
}

function expectIncreasingTimes(events: Envelope[]): void {
  for (let i = 1; i < events.length; i++) {
    expect(Date.parse(events[i]!.created_at)).toBeGreaterThan(Date.parse(events[i - 1]!.created_at));
  }
}

/** Content of version `v` of client `c`'s file: its size (100 + v) names the version in the event. */
function body(c: number, v: number): string {
  const head = `c${c} v${v} `;
  return head + 'x'.repeat(100 + v - head.length);
}

describe('event group commit under kill -9', () => {
  it('16 writers, killed twice at different points: every answered write keeps its file and its event', async () => {
    const CLIENTS = 16;
    let server = await startServer();
    servers.push(server);
    /** Answered versions per client, in order; versions of cycle k start at k * 1000. */
    const answered: number[][] = Array.from({ length: CLIENTS }, () => []);
    const sent: number[][] = Array.from({ length: CLIENTS }, () => []);
    for (let cycle = 1; cycle <= 2; cycle++) {
      const write = api(server, server.runtimeKey, 'gc');
      let total = 0;
      let reached!: () => void;
      const enough = new Promise<void>((r) => (reached = r));
      const target = 40 + cycle * 60; // a different point in each cycle
      const writers = Array.from({ length: CLIENTS }, async (_, c) => {
        for (let v = cycle * 1000; ; v++) {
          sent[c]!.push(v);
          let status: number;
          try {
            const res = await write(`/files/c${c}.txt`, { method: 'PUT', body: body(c, v) });
            status = res.status;
            await res.arrayBuffer();
          } catch {
            return; // the server is gone
          }
          expect(status).toBe(200);
          answered[c]!.push(v);
          if (++total === target) reached();
        }
      });
      await enough;
      // Writers are still sending: the kill lands amid writes, fsyncs and commits.
      await server.kill('SIGKILL');
      await Promise.all(writers);
      server = await server.restart();
      servers.push(server);
    }

    const events = (await allEvents(server, 'file.written')).filter((e) => /^workspace\/c\d+\.txt$/.test(e.data.path));
    expectIncreasingTimes(events);
    const read = api(server, server.runtimeKey, 'gc');
    for (let c = 0; c < CLIENTS; c++) {
      const logged = events.filter((e) => e.data.path === `workspace/c${c}.txt`).map((e) => e.data.size_bytes - 100);
      // A client writes one version after another: its events are in version order.
      expect(logged).toEqual([...logged].sort((a, b) => a - b));
      for (const v of answered[c]!) expect(logged, `client ${c}: answered version ${v} has no event`).toContain(v);
      // Anything else logged was in flight at a kill (sent, never answered).
      const extra = logged.filter((v) => !answered[c]!.includes(v));
      for (const v of extra) expect(sent[c]).toContain(v);
      expect(extra.length).toBeLessThanOrEqual(2);
      const res = await read(`/files/c${c}.txt`);
      expect(res.status).toBe(200);
      const text = await res.text();
      const m = /^c(\d+) v(\d+) x*$/.exec(text);
      expect(m, `client ${c}: torn file`).not.toBeNull();
      const v = Number(m![2]);
      expect([Number(m![1]), text.length]).toEqual([c, 100 + v]);
      // The newest answered version, or one sent after it that landed before the kill.
      expect(v).toBeGreaterThanOrEqual(answered[c]!.at(-1)!);
      expect(sent[c]).toContain(v);
    }
    // The log goes on after the kills.
    const after = await read('/write', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'after.txt', content: 'ok' }),
    });
    expect(after.status).toBe(200);
    const newest = (await allEvents(server, 'file.written')).at(-1)!;
    expect(newest.data.path).toBe('workspace/after.txt');
  }, 180_000);

  // PostgreSQL lets the test hold a lock the batch needs, so the kill lands inside one batch's transaction.
  it.runIf(usePg)(
    'a batch cut mid-way (events inserted, outbox rows waiting on a lock) leaves none of its events; every answered write keeps its event and its delivery',
    async () => {
      const server = await startServer({ env: { TROVE_WEBHOOK_RETRY_SCHEDULE: '3600000' } });
      servers.push(server);
      const admin = api(server, server.adminKey);
      let live = server;
      const created = await admin(`/v1/workspaces/${server.workspaceId}/webhooks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: 'http://127.0.0.1:9/hook', events: ['file.written'] }),
      });
      expect(created.status).toBe(201);
      const hook = (await created.json()) as { webhook_id: string };
      const sizes = new Map<number, string>(); // size -> state
      let next = 1;
      /** A write whose size names it; resolves with its status, or null when the server is gone. */
      const put = (tag: string) => {
        const size = 100 + next++;
        sizes.set(size, 'sent');
        const p = api(
          live,
          live.runtimeKey,
          'cut',
        )(`/files/${tag}-${size}.bin`, { method: 'PUT', body: 'x'.repeat(size) }).then(
          async (res) => {
            await res.arrayBuffer();
            if (res.status === 200) sizes.set(size, 'answered');
            return res.status;
          },
          () => null,
        );
        return { size, path: `${tag}-${size}.bin`, done: p };
      };
      for (let i = 0; i < 5; i++) expect(await put('before').done).toBe(200);

      const clients: pg.Client[] = [];
      const client = async () => {
        const c = new pg.Client({ connectionString: server.databaseUrl! });
        await c.connect();
        clients.push(c);
        return c;
      };
      const watcher = await client();
      const seqName = (await watcher.query<{ s: string }>(`select pg_get_serial_sequence('events', 'seq') as s`))
        .rows[0]!.s;
      const lastSeq = async () =>
        Number((await watcher.query<{ v: string }>(`select last_value as v from ${seqName}`)).rows[0]!.v);
      /** Server backends waiting for the deliveries table: a batch stopped at its outbox rows. */
      const waitingBatches = async () =>
        Number(
          (
            await watcher.query<{ n: string }>(
              `select count(*) as n from pg_stat_activity
               where datname = current_database() and wait_event_type = 'Lock' and query ilike 'insert into "webhook_deliveries"%'`,
            )
          ).rows[0]!.n,
        );
      const lockDeliveries = async (c: pg.Client) => {
        await c.query('begin');
        await c.query('lock table webhook_deliveries in share mode');
      };

      // Up to a few rounds until the batch that stops holds two events or more (which writes
      // join it depends on when each reached the log; an earlier round's batch commits).
      let cut = 0;
      let stuck: ReturnType<typeof put>[] = [];
      for (let round = 0; round < 5 && cut < 2; round++) {
        if (round > 0) {
          expect(await Promise.all(stuck.map((w) => w.done))).toEqual(stuck.map(() => 200));
        }
        // 1. The first lock stops a batch of one write at its outbox rows: the committer is busy.
        const first = await client();
        await lockDeliveries(first);
        const s0 = await lastSeq();
        const lone = put('lone');
        await eventually(waitingBatches, (n) => n === 1, 30_000);
        expect(await lastSeq()).toBe(s0 + 1);
        // 2. Eight more writes reach the log and queue behind it (their files land first).
        stuck = Array.from({ length: 8 }, () => put('stuck'));
        const read = api(server, server.runtimeKey, 'cut');
        await eventually(
          async () =>
            (await Promise.all(stuck.map(async (w) => (await read(`/files/${w.path}`)).status))).every(
              (s) => s === 200,
            ),
          (ok) => ok,
          30_000,
        );
        // 3. A second lock queues behind the batch; releasing the first lets that batch commit (its write is
        //    answered) and the next batch, with the queued writes, stops at the second lock.
        const second = await client();
        const secondHeld = lockDeliveries(second);
        await eventually(
          async () =>
            Number(
              (
                await watcher.query<{ n: string }>(
                  `select count(*) as n from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`,
                  [(second as unknown as { processID: number }).processID],
                )
              ).rows[0]!.n,
            ),
          (n) => n === 1,
          30_000,
        );
        await first.query('commit');
        expect(await lone.done).toBe(200);
        await secondHeld;
        await eventually(waitingBatches, (n) => n === 1, 30_000);
        cut = (await lastSeq()) - (s0 + 1);
        expect(cut).toBeGreaterThanOrEqual(1);
        if (cut < 2) await second.query('rollback');
      }
      expect(cut).toBeGreaterThanOrEqual(2);
      for (const w of stuck) expect(sizes.get(w.size)).toBe('sent');

      await server.kill('SIGKILL');
      for (const c of clients) await c.end().catch(() => {});
      expect(await Promise.all(stuck.map((w) => w.done))).toEqual(stuck.map(() => null));

      const again = await server.restart({ TROVE_WEBHOOK_RETRY_SCHEDULE: '3600000' });
      servers.push(again);
      live = again;
      const events = (await allEvents(again, 'file.written')).filter((e) => e.data.path.endsWith('.bin'));
      expectIncreasingTimes(events);
      // Exactly the answered writes: the cut batch and the writes queued behind it left no event.
      const answered = [...sizes].filter(([, s]) => s === 'answered').map(([size]) => size);
      expect(events.map((e) => e.data.size_bytes).sort((a, b) => a - b)).toEqual(answered.sort((a, b) => a - b));
      // Each with its delivery, written in its event's transaction.
      const db = new pg.Client({ connectionString: again.databaseUrl! });
      await db.connect();
      try {
        const rows = (
          await db.query<{ event_id: string }>(
            'select event_id from webhook_deliveries where webhook_id = $1 order by event_seq',
            [hook.webhook_id],
          )
        ).rows;
        expect(rows.map((r) => r.event_id)).toEqual(events.map((e) => e.id));
      } finally {
        await db.end();
      }
      const last = put('after');
      expect(await last.done).toBe(200);
      const newest = (await allEvents(again, 'file.written')).at(-1)!;
      expect(newest.data).toMatchObject({ path: `workspace/${last.path}`, size_bytes: last.size });
    },
    180_000,
  );
});
