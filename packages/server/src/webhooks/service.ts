/**
 * Webhook endpoints and their delivery log: the business rules behind the
 * admin API (validation, SSRF check at create/update, secrets shown once),
 * the transactional outbox hook, and the synchronous `test` delivery.
 */
import type { Transaction } from 'kysely';
import type { Config } from '../config.js';
import type { SyncRunner } from '../db/index.js';
import type { Database } from '../db/schema.js';
import { AppError } from '../errors.js';
import type { EventService, StoredEvent } from '../events/service.js';
import { publicEnvelope } from '../events/service.js';
import { isoMs, newDeliveryId, newWebhookId, newWebhookSecret, nowIso } from '../ids.js';
import type { DeliverySender } from './deliver.js';
import { buildHeaders } from './headers.js';
import type { AttemptRow, DeliveryRow, OutboxEndpoint, WebhookRepo, WebhookRow } from './repository.js';
import type { SecretBox } from './secret-box.js';
import { DestinationRefusedError, ResolutionError, resolveDestination, systemResolver, type Resolver } from './ssrf.js';
import {
  matches,
  validateDescription,
  validateEvents,
  validateSources,
  validateUrl,
  validateWebhookNamespace,
} from './validate.js';

/**
 * A webhook.test event is addressed to the one endpoint being tested, which `test`
 * delivers synchronously; fanning it out would ping every other endpoint too.
 */
function fansOut(event: StoredEvent): boolean {
  return event.type !== 'webhook.test';
}

/** An endpoint's filter, parsed once for all the events of a transaction. */
function endpointMatcher(w: OutboxEndpoint): (event: StoredEvent) => boolean {
  const filter = {
    events: JSON.parse(w.events) as string[],
    namespace: w.namespace,
    sources: w.sources === null ? null : (JSON.parse(w.sources) as string[]),
  };
  return (event) => matches(filter, event.type, event.namespace, event.data);
}

export const MAX_WEBHOOKS_PER_WORKSPACE = 100;
export const TEST_MESSAGE = 'This is a test event from Trove.';
/** How long creating or changing an endpoint waits for DNS before accepting the URL unresolved. */
export const CREATE_DNS_TIMEOUT_MS = 5_000;

/**
 * Ours: something the caller should know about an accepted request, e.g. a host
 * name that does not resolve yet (`dns_unresolved`). Answers carry `warnings`
 * only when there is one, so an ordinary answer is unchanged.
 */
export interface WebhookWarning {
  code: 'dns_unresolved';
  detail: string;
}

export interface WebhookView {
  webhook_id: string;
  url: string;
  events: string[];
  namespace: string | null;
  /** Ours: only events whose data.source is one of these (null: any). */
  sources: string[] | null;
  description: string | null;
  enabled: boolean;
  created_at: string;
  last_delivery_ok: boolean | null;
  last_delivery_at: string | null;
  last_delivery_status: number | null;
  /** Ours: why the endpoint is disabled (null while enabled). */
  disabled_reason: string | null;
  /** Ours: deliveries that failed for good in a row; reaching the limit disables the endpoint. */
  consecutive_failures: number;
}

export interface DeliveryView {
  delivery_id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  last_attempt_at: string | null;
  next_attempt_at: string | null;
  delivered_at: string | null;
  created_at: string;
}

export interface DeliveryDetailView extends DeliveryView {
  attempt_history: AttemptRow[];
}

export interface TestResult {
  ok: boolean;
  event_id: string;
  status: number | null;
  error: string | null;
  /** Ours: the delivery log entry of this test. */
  delivery_id: string;
}

export interface WebhookCreateInput {
  url: unknown;
  events?: unknown;
  namespace?: unknown;
  sources?: unknown;
  description?: unknown;
}

export interface WebhookUpdateInput {
  enabled?: unknown;
  url?: unknown;
  events?: unknown;
  namespace?: unknown;
  sources?: unknown;
  description?: unknown;
}

function withWarnings(warnings: WebhookWarning[]): { warnings?: WebhookWarning[] } {
  return warnings.length > 0 ? { warnings } : {};
}

export function webhookView(row: WebhookRow): WebhookView {
  return {
    webhook_id: row.id,
    url: row.url,
    events: JSON.parse(row.events) as string[],
    namespace: row.namespace,
    sources: row.sources === null || row.sources === undefined ? null : (JSON.parse(row.sources) as string[]),
    description: row.description,
    enabled: Number(row.enabled) === 1,
    created_at: row.created_at,
    last_delivery_ok: row.last_delivery_ok === null ? null : Number(row.last_delivery_ok) === 1,
    last_delivery_at: row.last_delivery_at,
    last_delivery_status: row.last_delivery_status === null ? null : Number(row.last_delivery_status),
    disabled_reason: row.disabled_reason,
    consecutive_failures: Number(row.consecutive_failures),
  };
}

export function deliveryView(row: DeliveryRow): DeliveryView {
  return {
    delivery_id: row.id,
    webhook_id: row.webhook_id,
    event_id: row.event_id,
    event_type: row.event_type,
    status: row.status,
    attempts: row.attempts,
    last_status_code: row.last_status_code,
    last_error: row.last_error,
    last_attempt_at: row.last_attempt_at,
    next_attempt_at: row.status === 'pending' ? isoMs(row.next_attempt_ms) : null,
    delivered_at: row.delivered_at,
    created_at: row.created_at,
  };
}

export interface WebhookServiceDeps {
  repo: WebhookRepo;
  secrets: SecretBox;
  sender: DeliverySender;
  events: EventService;
  config: Config;
  version: string;
  /** Told when deliveries may have become due (new endpoint, re-enable, resend). */
  onWork: (workspaceId: string) => void;
  resolve?: Resolver;
  /** Default CREATE_DNS_TIMEOUT_MS (tests shorten it). */
  dnsTimeoutMs?: number;
}

export class WebhookService {
  private readonly resolve: Resolver;
  private readonly dnsTimeoutMs: number;

  constructor(private readonly d: WebhookServiceDeps) {
    this.resolve = d.resolve ?? systemResolver;
    this.dnsTimeoutMs = d.dnsTimeoutMs ?? CREATE_DNS_TIMEOUT_MS;
  }

  /** The outbox: runs inside every event transaction, with its events (EventService.onAppend). */
  readonly outboxHook = async (trx: Transaction<Database>, events: readonly StoredEvent[]): Promise<void> => {
    const out = events.filter(fansOut);
    if (out.length > 0) await this.d.repo.enqueue(trx, out, endpointMatcher, newDeliveryId);
  };

  /** outboxHook inside SQLite's synchronous append (SqliteSync). */
  readonly outboxHookSync = (run: SyncRunner, events: readonly StoredEvent[]): void => {
    const out = events.filter(fansOut);
    if (out.length > 0) this.d.repo.enqueueSync(run, out, endpointMatcher, newDeliveryId);
  };

  /**
   * Validates the URL and, unless private targets are allowed, its resolved
   * addresses: a literal or a name resolving to any refused address is refused.
   * A name that does not resolve now (record not yet published, resolver down)
   * is accepted with a warning: every delivery attempt resolves and checks it
   * again, and that connect-time check is what keeps deliveries off private
   * addresses.
   */
  private async checkUrl(raw: unknown): Promise<{ url: string; warnings: WebhookWarning[] }> {
    const url = validateUrl(raw);
    const warnings: WebhookWarning[] = [];
    if (!this.d.config.webhookAllowPrivate) {
      try {
        await resolveDestination(url.hostname, {
          allowPrivate: false,
          resolve: this.resolve,
          timeoutMs: this.dnsTimeoutMs,
        });
      } catch (err) {
        if (err instanceof DestinationRefusedError) throw new AppError('bad_request', `url: ${err.message}`);
        if (!(err instanceof ResolutionError)) throw err;
        warnings.push({
          code: 'dns_unresolved',
          detail:
            `url: ${err.message}. The webhook was saved anyway: each delivery attempt resolves the host again ` +
            '(private addresses are still refused) and fails, to be retried, until it resolves; see the delivery log',
        });
      }
    }
    // Stored as given (trimmed), so clients read back exactly the URL they sent.
    return { url: String(raw).trim(), warnings };
  }

  private async mustGet(workspaceId: string, id: string): Promise<WebhookRow> {
    const row = await this.d.repo.getWebhook(workspaceId, id);
    if (!row) throw new AppError('webhook_not_found', `Webhook not found: ${id}`);
    return row;
  }

  async create(
    workspaceId: string,
    input: WebhookCreateInput,
  ): Promise<WebhookView & { signing_secret: string; warnings?: WebhookWarning[] }> {
    const events = validateEvents(input.events ?? ['*']);
    const namespace = validateWebhookNamespace(input.namespace);
    const sources = validateSources(input.sources);
    const description = validateDescription(input.description);
    const { url, warnings } = await this.checkUrl(input.url);
    if ((await this.d.repo.countWebhooks(workspaceId)) >= MAX_WEBHOOKS_PER_WORKSPACE) {
      throw new AppError(
        'conflict',
        `A workspace can have at most ${MAX_WEBHOOKS_PER_WORKSPACE} webhooks; delete one first`,
      );
    }
    const secret = newWebhookSecret();
    const row: WebhookRow = {
      id: newWebhookId(),
      workspace_id: workspaceId,
      url,
      events: JSON.stringify(events),
      namespace,
      sources: sources === null ? null : JSON.stringify(sources),
      description,
      enabled: 1,
      // Security: stored sealed; the plain secret is returned once, below, and never again.
      secret: this.d.secrets.seal(secret),
      created_at: nowIso(),
      consecutive_failures: 0,
      disabled_reason: null,
      last_delivery_ok: null,
      last_delivery_at: null,
      last_delivery_status: null,
    };
    await this.d.repo.insertWebhook(row);
    this.d.onWork(workspaceId);
    return { ...webhookView(row), signing_secret: secret, ...withWarnings(warnings) };
  }

  async list(workspaceId: string): Promise<WebhookView[]> {
    return (await this.d.repo.listWebhooks(workspaceId)).map(webhookView);
  }

  async retrieve(workspaceId: string, id: string): Promise<WebhookView> {
    return webhookView(await this.mustGet(workspaceId, id));
  }

  async update(
    workspaceId: string,
    id: string,
    input: WebhookUpdateInput,
  ): Promise<WebhookView & { warnings?: WebhookWarning[] }> {
    const patch: Partial<WebhookRow> = {};
    let warnings: WebhookWarning[] = [];
    if (input.url !== undefined) ({ url: patch.url, warnings } = await this.checkUrl(input.url));
    if (input.events !== undefined) patch.events = JSON.stringify(validateEvents(input.events));
    if (input.namespace !== undefined) patch.namespace = validateWebhookNamespace(input.namespace);
    if (input.sources !== undefined) {
      const sources = validateSources(input.sources);
      patch.sources = sources === null ? null : JSON.stringify(sources);
    }
    if (input.description !== undefined) patch.description = validateDescription(input.description);
    if (input.enabled !== undefined) {
      if (typeof input.enabled !== 'boolean') throw new AppError('validation_failed', 'enabled: must be true or false');
      if (input.enabled) {
        // Re-enabling starts a new failure streak.
        patch.enabled = 1;
        patch.consecutive_failures = 0;
        patch.disabled_reason = null;
      } else {
        patch.enabled = 0;
        patch.disabled_reason = 'Disabled by an admin; re-enable with PATCH {"enabled": true}';
      }
    }
    if (Object.keys(patch).length === 0) {
      throw new AppError(
        'validation_failed',
        'Nothing to update: send at least one of enabled, url, events, namespace, sources, description',
      );
    }
    if (!(await this.d.repo.updateWebhook(workspaceId, id, patch))) {
      throw new AppError('webhook_not_found', `Webhook not found: ${id}`);
    }
    const row = await this.mustGet(workspaceId, id);
    if (Number(row.enabled) === 1) this.d.onWork(workspaceId);
    return { ...webhookView(row), ...withWarnings(warnings) };
  }

  async delete(workspaceId: string, id: string): Promise<{ webhook_id: string; deleted: true }> {
    if (!(await this.d.repo.deleteWebhook(workspaceId, id)))
      throw new AppError('webhook_not_found', `Webhook not found: ${id}`);
    return { webhook_id: id, deleted: true };
  }

  /**
   * Stores a `webhook.test` event and delivers it to this endpoint only, now,
   * whatever its filter and even when disabled (to check it before re-enabling).
   * A receiver failure is reported, not raised, and is not retried.
   */
  async test(workspaceId: string, id: string): Promise<TestResult> {
    const hook = await this.mustGet(workspaceId, id);
    const event = await this.d.events.emit({
      workspaceId,
      namespace: hook.namespace,
      type: 'webhook.test',
      data: { message: TEST_MESSAGE },
    });
    const deliveryId = newDeliveryId();
    const attemptedAt = Date.now();
    let result: { ok: boolean; statusCode: number | null; error: string | null; durationMs: number };
    try {
      const secret = this.d.secrets.open(hook.secret);
      const body = JSON.stringify(publicEnvelope(event));
      const headers = buildHeaders({
        secret,
        body,
        event,
        deliveryId,
        version: this.d.version,
        timestamp: Math.floor(attemptedAt / 1000),
      });
      result = await this.d.sender.send({ url: hook.url, body, headers });
    } catch (err) {
      result = { ok: false, statusCode: null, error: (err as Error).message, durationMs: Date.now() - attemptedAt };
    }
    const createdMs = Date.parse(event.created_at);
    await this.d.repo.insertFinishedDelivery({
      row: {
        id: deliveryId,
        workspace_id: workspaceId,
        webhook_id: id,
        event_seq: event.seq,
        event_id: event.id,
        event_type: event.type,
        status: result.ok ? 'delivered' : 'failed',
        attempts: 1,
        next_attempt_ms: attemptedAt,
        lease_owner: null,
        lease_until_ms: null,
        last_status_code: result.statusCode,
        last_error: result.error,
        last_attempt_at: isoMs(attemptedAt),
        delivered_at: result.ok ? isoMs(attemptedAt) : null,
        created_at: event.created_at,
        created_ms: createdMs,
      },
      attempt: {
        attempted_at: isoMs(attemptedAt),
        status_code: result.statusCode,
        error: result.error,
        duration_ms: result.durationMs,
        next_attempt_at: null,
      },
    });
    return {
      ok: result.ok,
      event_id: event.id,
      status: result.statusCode,
      error: result.error,
      delivery_id: deliveryId,
    };
  }

  async listDeliveries(
    workspaceId: string,
    id: string,
    opts: { limit: number; status?: DeliveryRow['status'] },
  ): Promise<DeliveryView[]> {
    await this.mustGet(workspaceId, id);
    return (await this.d.repo.listDeliveries(workspaceId, id, opts)).map(deliveryView);
  }

  async retrieveDelivery(workspaceId: string, id: string, deliveryId: string): Promise<DeliveryDetailView> {
    await this.mustGet(workspaceId, id);
    const row = await this.d.repo.getDelivery(workspaceId, id, deliveryId);
    if (!row) throw new AppError('delivery_not_found', `Delivery not found: ${deliveryId}`);
    return { ...deliveryView(row), attempt_history: await this.d.repo.listAttempts(workspaceId, deliveryId) };
  }

  /** Queues a delivery again; it goes out before the endpoint's newer pending ones. */
  async resend(workspaceId: string, id: string, deliveryId: string): Promise<DeliveryView> {
    const hook = await this.mustGet(workspaceId, id);
    if (Number(hook.enabled) !== 1) {
      throw new AppError(
        'conflict',
        `Webhook ${id} is disabled: re-enable it with PATCH {"enabled": true} before resending`,
      );
    }
    if (!(await this.d.repo.resend(workspaceId, id, deliveryId, Date.now()))) {
      throw new AppError('delivery_not_found', `Delivery not found: ${deliveryId}`);
    }
    this.d.onWork(workspaceId);
    const row = await this.d.repo.getDelivery(workspaceId, id, deliveryId);
    if (!row) throw new AppError('delivery_not_found', `Delivery not found: ${deliveryId}`);
    return deliveryView(row);
  }
}
