/**
 * The delivery engine. One worker runs per node. It claims due deliveries
 * (leases in the database, so any number of nodes can share the outbox),
 * sends each with a per-attempt timeout, and records the outcome. It wakes
 * when an event is appended to a workspace with webhooks (the event bus,
 * cross-node in cluster mode), when one of its own deliveries finishes (the
 * endpoint's next delivery is now at the head), at the earliest scheduled
 * retry, and at least every `pollMs` (expired leases of dead nodes).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../context.js';
import { publicEnvelope } from '../events/service.js';
import { planRetry } from './backoff.js';
import type { DeliverySender } from './deliver.js';
import type { ClaimedDelivery, WebhookRepo } from './repository.js';
import type { SecretBox } from './secret-box.js';
import { buildHeaders } from './headers.js';

export interface WorkerOptions {
  config: Config['webhooks'];
  repo: WebhookRepo;
  sender: DeliverySender;
  secrets: SecretBox;
  bus: EventBus;
  logger: Logger;
  version: string;
  /** Release all leases at start (single-node SQLite: they belong to a dead process). */
  releaseOrphansOnStart: boolean;
  pollMs?: number;
}

const SUBSCRIPTION_REFRESH_MS = 10_000;
const SWEEP_INTERVAL_MS = 3_600_000;
/** Finished deliveries are kept this long for the delivery log. */
export const DELIVERY_RETENTION_MS = 30 * 24 * 3_600_000;

export class DeliveryWorker {
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly shutdown = new AbortController();
  private readonly subscriptions = new Map<string, () => void>();
  private running: Promise<void> | null = null;
  private stopping = false;
  private woken = false;
  private wake: (() => void) | null = null;
  /** Earliest retry time known to be scheduled; re-read from the database when `retryStale`. */
  private nextRetryAt: number | null = null;
  private retryStale = true;
  private lastRefresh = 0;
  private lastSweep = 0;
  private readonly pollMs: number;

  constructor(private readonly o: WorkerOptions) {
    this.pollMs = o.pollMs ?? 1000;
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (this.o.releaseOrphansOnStart) {
      const n = await this.o.repo.releaseOrphanedLeases();
      if (n > 0) this.o.logger.info({ deliveries: n }, 'webhooks: resuming deliveries interrupted by a restart');
    }
    await this.refreshSubscriptions();
    this.running = this.loop();
  }

  /** Wake the loop now (new event, finished delivery, resend). */
  kick(): void {
    this.woken = true;
    this.wake?.();
  }

  /** Makes sure events of this workspace wake the worker (called when a webhook is created or enabled). */
  watch(workspaceId: string): void {
    if (this.subscriptions.has(workspaceId) || this.stopping) return;
    this.subscriptions.set(
      workspaceId,
      this.o.bus.subscribe(workspaceId, () => this.kick()),
    );
  }

  /**
   * Stops claiming, gives attempts in flight `graceMs` to finish, then aborts
   * them and releases their leases so another node (or the next start) resends.
   */
  stop(graceMs = 5_000): Promise<void> {
    this.stopped ??= this.halt(graceMs);
    return this.stopped;
  }

  private stopped: Promise<void> | null = null;

  private async halt(graceMs: number): Promise<void> {
    const grace = setTimeout(() => this.shutdown.abort(), graceMs);
    this.stopping = true;
    this.kick();
    await this.running;
    await Promise.allSettled([...this.inFlight.values()]);
    clearTimeout(grace);
    this.shutdown.abort();
    for (const unsubscribe of this.subscriptions.values()) unsubscribe();
    this.subscriptions.clear();
    await this.o.repo.releaseLeases(this.owner).catch(() => {});
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      this.woken = false;
      const free = this.o.config.concurrency - this.inFlight.size;
      let claimed = 0;
      try {
        const now = Date.now();
        if (now - this.lastRefresh > SUBSCRIPTION_REFRESH_MS) await this.refreshSubscriptions();
        if (now - this.lastSweep > SWEEP_INTERVAL_MS) await this.sweep();
        if (free > 0) {
          const ids = await this.o.repo.claim(
            this.owner,
            free,
            now,
            this.o.config.attemptTimeoutMs + this.o.config.leaseMarginMs,
          );
          claimed = ids.length;
          if (ids.length > 0) {
            for (const item of await this.o.repo.loadClaimed(ids)) this.begin(item);
          }
        }
        if (this.stopping) break;
        if (free > 0 && claimed === free) continue;
        if (this.woken) continue;
        let delay = this.pollMs;
        if (free > 0) {
          // Retries this worker schedules are tracked as it records them; the database is asked
          // only after the known earliest one came due or after an idle poll (other nodes, restarts).
          if (this.nextRetryAt !== null && this.nextRetryAt <= Date.now()) this.retryStale = true;
          if (this.retryStale) {
            this.nextRetryAt = await this.o.repo.nextRetryMs(Date.now());
            this.retryStale = false;
          }
          if (this.nextRetryAt !== null) delay = Math.max(0, Math.min(delay, this.nextRetryAt - Date.now()));
        }
        if (!this.woken) {
          const slept = await this.sleep(delay);
          if (slept === 'timeout') this.retryStale = true;
        }
      } catch (err) {
        if (this.stopping) break;
        // The database may be restarting; keep trying without spinning.
        this.o.logger.error({ err }, 'webhooks: delivery loop error');
        await this.sleep(this.pollMs);
      }
    }
  }

  private sleep(ms: number): Promise<'timeout' | 'woken'> {
    return new Promise((resolve) => {
      const done = (why: 'timeout' | 'woken') => {
        clearTimeout(timer);
        this.wake = null;
        resolve(why);
      };
      const timer = setTimeout(() => done('timeout'), ms);
      this.wake = () => done('woken');
      if (this.woken || this.stopping) done('woken');
    });
  }

  private begin(item: ClaimedDelivery): void {
    const id = item.delivery.id;
    const p = this.attempt(item)
      .catch((err) => {
        this.o.logger.error({ err, delivery_id: id }, 'webhooks: recording an attempt failed');
        // Let the lease lapse rather than guess; the delivery is retried after it expires.
      })
      .finally(() => {
        this.inFlight.delete(id);
        this.kick();
      });
    this.inFlight.set(id, p);
  }

  private async attempt(item: ClaimedDelivery): Promise<void> {
    const { delivery: d, webhook, event } = item;
    if (!webhook) {
      await this.o.repo.abandon(d.id, 'The webhook was deleted');
      return;
    }
    if (!webhook.enabled) {
      // Disabled between claim and send: keep it pending for when it is re-enabled.
      await this.o.repo.releaseLeases(this.owner, [d.id]);
      return;
    }
    if (!event) {
      await this.o.repo.abandon(d.id, 'The event no longer exists in the event log');
      return;
    }
    let secret: string;
    try {
      secret = this.o.secrets.open(webhook.secret);
    } catch (err) {
      await this.finish(
        item,
        { ok: false, statusCode: null, error: (err as Error).message, durationMs: 0 },
        Date.now(),
      );
      return;
    }
    const body = JSON.stringify(publicEnvelope(event));
    const attemptedAt = Date.now();
    const headers = buildHeaders({
      secret,
      body,
      event,
      deliveryId: d.id,
      version: this.o.version,
      timestamp: Math.floor(attemptedAt / 1000),
    });
    const result = await this.o.sender.send({ url: webhook.url, body, headers, signal: this.shutdown.signal });
    if (this.shutdown.signal.aborted && !result.ok && result.statusCode === null) {
      // Cut off by shutdown: not the receiver's fault, so no attempt is charged.
      await this.o.repo.releaseLeases(this.owner, [d.id]);
      return;
    }
    await this.finish(item, result, attemptedAt);
  }

  private async finish(
    item: ClaimedDelivery,
    result: { ok: boolean; statusCode: number | null; error: string | null; durationMs: number },
    attemptedAt: number,
  ): Promise<void> {
    const d = item.delivery;
    const cfg = this.o.config;
    const plan = result.ok
      ? ({ kind: 'delivered' } as const)
      : (() => {
          const p = planRetry(
            {
              nowMs: Date.now(),
              windowStartMs: d.window_start_ms ?? d.created_ms,
              attemptsInWindow: d.window_attempts + 1,
            },
            { retryScheduleMs: cfg.retryScheduleMs, maxAgeMs: cfg.maxAgeMs },
          );
          return p.final ? ({ kind: 'failed' } as const) : ({ kind: 'retry', nextAttemptMs: p.nextAttemptMs } as const);
        })();
    const { disabledNow, failedForGood } = await this.o.repo.recordAttempt({
      deliveryId: d.id,
      webhookId: d.webhook_id,
      workspaceId: d.workspace_id,
      leaseOwner: this.owner,
      attemptedAtMs: attemptedAt,
      statusCode: result.statusCode,
      error: result.error,
      durationMs: result.durationMs,
      result: plan,
      disableAfterFailures: cfg.disableAfterFailures,
    });
    if (plan.kind === 'retry' && (this.nextRetryAt === null || plan.nextAttemptMs < this.nextRetryAt)) {
      this.nextRetryAt = plan.nextAttemptMs;
      // Wake the loop so it sleeps until this retry rather than a full poll interval.
      this.kick();
    }
    if (failedForGood) {
      this.o.logger.warn(
        { delivery_id: d.id, webhook_id: d.webhook_id, error: result.error },
        'webhooks: delivery failed for good',
      );
    }
    if (disabledNow) {
      this.o.logger.warn(
        { webhook_id: d.webhook_id, workspace_id: d.workspace_id },
        `webhooks: endpoint disabled after ${cfg.disableAfterFailures} consecutive failed deliveries`,
      );
    }
  }

  private async refreshSubscriptions(): Promise<void> {
    this.lastRefresh = Date.now();
    for (const ws of await this.o.repo.workspacesWithWebhooks()) this.watch(ws);
  }

  private async sweep(): Promise<void> {
    this.lastSweep = Date.now();
    const before = Date.now() - DELIVERY_RETENTION_MS;
    // Bounded batches keep each transaction short; the rest goes on the next sweep.
    for (let i = 0; i < 20; i++) {
      if ((await this.o.repo.sweepFinished(before, 500)) < 500) break;
    }
  }
}
