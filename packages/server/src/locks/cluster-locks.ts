/**
 * Namespace reader/writer locks that hold across nodes: PostgreSQL advisory
 * locks keyed by a 64-bit hash of workspace + namespace, layered under the
 * in-process lock.
 *
 * Why a few dedicated sessions per node instead of a pooled connection per
 * held lock: an exec holds the shared side for up to its timeout, so a
 * connection per lock would let a burst of execs drain the query pool. A
 * session may hold any number of advisory locks (shared ones stack), so the
 * node's locks live on a small fixed set of dedicated connections (a
 * namespace always on the same one) and only try-variants are sent, which
 * return at once; waiting is polling with backoff and a deadline, never a
 * blocked connection, so nothing can deadlock and a timeout is just a 409.
 *
 * The in-process lock goes first. It keeps same-node contention off the
 * database, and it is required for correctness: PostgreSQL never makes a
 * session wait for a lock it already holds, so two requests of one node
 * must be ordered before they reach a shared session.
 *
 * Writers are not starved by a stream of readers on other nodes: a waiting
 * writer holds an "intent" key (shared, so several writers may wait), and a
 * reader only takes the namespace key while it can briefly take the intent
 * key exclusively, i.e. while no writer waits.
 *
 * If the session dies, PostgreSQL releases its locks. Operations already
 * running keep going (a file write cannot be interrupted halfway); new ones
 * wait for the reconnect. The generation check stops a release from
 * unlocking a lock taken on a newer connection.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../errors.js';
import type { Logger } from '../context.js';
import type { PgSession } from '../db/pg-session.js';
import { LocalNamespaceLocks, type NamespaceLocks } from './namespace-locks.js';

const FIRST_POLL_MS = 2;
const MAX_POLL_MS = 100;

/** Signed 64-bit key for pg_advisory_*(bigint), as a decimal string (no precision loss). */
export function advisoryKey(kind: 'ns' | 'intent', workspaceId: string, namespace: string): string {
  const digest = createHash('sha256').update(`trove\0${kind}\0${workspaceId}\0${namespace}`).digest();
  return digest.readBigInt64BE(0).toString();
}

function busy(): AppError {
  return new AppError('conflict', 'The namespace is busy (a snapshot or restore is in progress); retry shortly', {
    retryAfter: 1,
  });
}

function unavailable(): AppError {
  return new AppError('unavailable', 'The database is unavailable; retry shortly', { retryAfter: 5 });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ClusterNamespaceLocks implements NamespaceLocks {
  private readonly local = new LocalNamespaceLocks();

  /**
   * `sessions`: a namespace always maps to the same one (its locks must be
   * released where they were taken). Several sessions only add throughput:
   * each lock costs two round trips, serialised per session.
   */
  constructor(
    private readonly sessions: PgSession[],
    private readonly logger: Logger,
  ) {
    if (sessions.length === 0) throw new Error('ClusterNamespaceLocks needs at least one session');
  }

  shared<T>(ws: string, ns: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    return this.local.shared(ws, ns, () => this.withRemote(ws, ns, false, deadline, fn), timeoutMs);
  }

  exclusive<T>(ws: string, ns: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    return this.local.exclusive(ws, ns, () => this.withRemote(ws, ns, true, deadline, fn), timeoutMs);
  }

  private async withRemote<T>(
    ws: string,
    ns: string,
    exclusive: boolean,
    deadline: number,
    fn: () => Promise<T>,
  ): Promise<T> {
    const key = advisoryKey('ns', ws, ns);
    const intent = advisoryKey('intent', ws, ns);
    const session = this.sessions[Number(BigInt.asUintN(64, BigInt(key)) % BigInt(this.sessions.length))]!;
    const generation = exclusive
      ? await this.acquireExclusive(session, key, intent, deadline)
      : await this.acquireShared(session, key, intent, deadline);
    try {
      return await fn();
    } finally {
      await this.release(session, key, exclusive, generation);
    }
  }

  /** Runs `sqlText` (a boolean try) until it returns true or the deadline passes; returns the session generation. */
  private async poll(session: PgSession, sqlText: string, values: string[], deadline: number): Promise<number> {
    let wait = FIRST_POLL_MS;
    for (;;) {
      let ok: boolean;
      let generation: number;
      try {
        const r = await session.query<{ ok: boolean }>(sqlText, values);
        generation = session.generation;
        ok = r.rows[0]?.ok === true;
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'namespace lock: database unreachable');
        throw unavailable();
      }
      if (ok) return generation;
      if (Date.now() + wait > deadline) throw busy();
      await sleep(wait);
      wait = Math.min(MAX_POLL_MS, Math.ceil(wait * 1.5));
    }
  }

  private acquireShared(session: PgSession, key: string, intent: string, deadline: number): Promise<number> {
    // CASE fixes the evaluation order (AND does not): check no writer waits, give the probe back, then try.
    return this.poll(
      session,
      `select case when pg_try_advisory_lock($2::bigint)
         then case when pg_advisory_unlock($2::bigint) then pg_try_advisory_lock_shared($1::bigint) else false end
         else false end as ok`,
      [key, intent],
      deadline,
    );
  }

  private async acquireExclusive(session: PgSession, key: string, intent: string, deadline: number): Promise<number> {
    const gen = await this.poll(session, 'select pg_try_advisory_lock_shared($1::bigint) as ok', [intent], deadline);
    try {
      return await this.poll(session, 'select pg_try_advisory_lock($1::bigint) as ok', [key], deadline);
    } finally {
      // A session that died meanwhile already dropped the intent key; unlocking on the new one would warn.
      if (session.generation === gen) {
        await session.query('select pg_advisory_unlock_shared($1::bigint)', [intent]).catch(() => {});
      }
    }
  }

  private async release(session: PgSession, key: string, exclusive: boolean, generation: number): Promise<void> {
    if (session.generation !== generation || !session.connected) {
      this.logger.warn({ key }, 'namespace lock was lost with its database session before release');
      return;
    }
    const fn = exclusive ? 'pg_advisory_unlock' : 'pg_advisory_unlock_shared';
    try {
      await session.query(`select ${fn}($1::bigint)`, [key]);
    } catch (err) {
      // The session is gone, and PostgreSQL released the lock with it.
      this.logger.warn({ err: (err as Error).message }, 'namespace lock release failed; the session is gone');
    }
  }
}
