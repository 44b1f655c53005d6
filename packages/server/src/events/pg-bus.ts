/**
 * The event bus of cluster mode: every node LISTENs on one channel, and the
 * event transaction NOTIFYs it with the workspace id (delivered on commit, so
 * a woken waiter always finds the row). Waiters re-query the table, so a
 * wake-up lost while the LISTEN connection was down is repaired by waking
 * everyone once it is back.
 */
import { sql, type Transaction } from 'kysely';
import type pg from 'pg';
import type { Database } from '../db/schema.js';
import { PgSession } from '../db/pg-session.js';
import type { Logger } from '../context.js';
import { LocalEventBus } from './bus.js';
import type { StoredEvent } from './service.js';

export const EVENTS_CHANNEL = 'trove_events';

export class PgEventBus extends LocalEventBus {
  private readonly session: PgSession;

  constructor(config: pg.ClientConfig, logger: Logger) {
    super();
    this.session = new PgSession({
      config,
      logger,
      name: 'listen',
      eager: true,
      onConnect: async (client) => {
        client.on('notification', (m) => {
          if (m.channel === EVENTS_CHANNEL && m.payload) this.emitter.emit(m.payload);
        });
        await client.query(`LISTEN ${EVENTS_CHANNEL}`);
        // NOTIFYs sent while no connection listened are gone, the rows are not: every waiter
        // re-queries. Also on the first connection, which may come after a failed start.
        this.resync();
      },
    });
    this.session.start();
  }

  /** True while the LISTEN connection is up (wake-ups from other nodes arrive). */
  get listening(): boolean {
    return this.session.connected;
  }

  private resync(): void {
    for (const name of this.emitter.eventNames()) this.emitter.emit(name);
  }

  /** In-transaction hook: the NOTIFY is queued with the event and sent only if it commits. */
  static async notify(trx: Transaction<Database>, event: StoredEvent): Promise<void> {
    await sql`select pg_notify(${EVENTS_CHANNEL}, ${event.workspace_id})`.execute(trx);
  }

  // publish() wakes local waiters at once; other nodes hear the NOTIFY sent by the committed transaction.

  override async close(): Promise<void> {
    await super.close();
    await this.session.close();
  }
}
