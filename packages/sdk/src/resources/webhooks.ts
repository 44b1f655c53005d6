/** `/v1/workspaces/{ws}/webhooks` (admin scope): endpoints, test deliveries and the delivery log. */
import type { BaseClient, RequestOptions } from '../client.js';
import type {
  CreatedWebhook,
  EventSource,
  EventType,
  Webhook,
  WebhookDeleteResult,
  WebhookDelivery,
  WebhookDeliveryDetail,
  WebhookTestResult,
} from '../types.js';

/** Parameters of `webhooks.create()`. */
export interface WebhookCreateParams extends RequestOptions {
  /** Receiver URL (`POST`ed one event envelope per delivery). */
  url: string;
  /** `["*"]` (default) for every type including future ones, or a list of types. */
  events?: readonly ('*' | EventType | (string & {}))[];
  /** Only this namespace's events (`null`/omitted: all). */
  namespace?: string | null;
  /** Ours: only events whose `data.source` is one of these (`exec`: changes made by commands; `null`/omitted: any event). */
  sources?: readonly EventSource[] | null;
  /** A free-form note shown in listings. */
  description?: string | null;
}

/** Parameters of `webhooks.update()`; omitted fields are unchanged. */
export interface WebhookUpdateParams extends RequestOptions {
  /** `true` re-enables an endpoint the server disabled after repeated failures. */
  enabled?: boolean;
  /** A new receiver URL. */
  url?: string;
  /** New event types (`["*"]` for all). */
  events?: readonly ('*' | EventType | (string & {}))[];
  /** Only this namespace's events (`null`: all). */
  namespace?: string | null;
  /** Ours: only events whose `data.source` is one of these (`null`: any event). */
  sources?: readonly EventSource[] | null;
  /** A new note (`null` clears it). */
  description?: string | null;
}

/** Options of `webhooks.listDeliveries()`. */
export interface WebhookDeliveryListOptions extends RequestOptions {
  /** Most recent N deliveries (server default 20, at most 100). */
  limit?: number;
  /** Only deliveries in this state. */
  status?: WebhookDelivery['status'];
}

/** Webhook endpoints (`admin.webhooks`). */
export class Webhooks {
  constructor(private readonly client: BaseClient) {}

  private async base(options?: RequestOptions): Promise<string> {
    return `/v1/workspaces/${encodeURIComponent(await this.client.getWorkspaceId(options))}/webhooks`;
  }

  /** Creates an endpoint; keep the returned `signingSecret` to verify deliveries. */
  async create(params: WebhookCreateParams): Promise<CreatedWebhook> {
    const { url, events = ['*'], namespace = null, sources, description = null, ...req } = params;
    return this.client.requestJson<CreatedWebhook>({
      ...req,
      method: 'POST',
      path: await this.base(req),
      // `sources` only when given: servers without it keep accepting the body as before.
      json: { url, events, namespace, description, ...(sources !== undefined ? { sources } : {}) },
    });
  }

  /** Lists endpoints with their last delivery outcome. */
  async list(options?: RequestOptions): Promise<Webhook[]> {
    const page = await this.client.requestJson<{ webhooks: Webhook[] }>({
      ...options,
      method: 'GET',
      path: await this.base(options),
    });
    return page.webhooks;
  }

  /** One endpoint with its last delivery outcome. */
  async retrieve(webhookId: string, options?: RequestOptions): Promise<Webhook> {
    return this.client.requestJson<Webhook>({
      ...options,
      method: 'GET',
      path: `${await this.base(options)}/${encodeURIComponent(webhookId)}`,
    });
  }

  /** Changes an endpoint (ours), e.g. `{ enabled: true }` after an auto-disable. */
  async update(webhookId: string, params: WebhookUpdateParams): Promise<Webhook> {
    const { enabled, url, events, namespace, sources, description, ...req } = params;
    const json: Record<string, unknown> = {};
    if (enabled !== undefined) json.enabled = enabled;
    if (url !== undefined) json.url = url;
    if (events !== undefined) json.events = events;
    if (namespace !== undefined) json.namespace = namespace;
    if (sources !== undefined) json.sources = sources;
    if (description !== undefined) json.description = description;
    return this.client.requestJson<Webhook>({
      ...req,
      method: 'PATCH',
      path: `${await this.base(req)}/${encodeURIComponent(webhookId)}`,
      json,
    });
  }

  /** Deletes an endpoint. */
  async delete(webhookId: string, options?: RequestOptions): Promise<WebhookDeleteResult> {
    return this.client.requestJson<WebhookDeleteResult>({
      ...options,
      method: 'DELETE',
      path: `${await this.base(options)}/${encodeURIComponent(webhookId)}`,
    });
  }

  /** Sends one signed `webhook.test` delivery now; a receiver failure is `ok: false`, not an error. */
  async test(webhookId: string, options?: RequestOptions): Promise<WebhookTestResult> {
    return this.client.requestJson<WebhookTestResult>({
      ...options,
      method: 'POST',
      path: `${await this.base(options)}/${encodeURIComponent(webhookId)}/test`,
    });
  }

  /** The endpoint's delivery log (ours), newest first. */
  async listDeliveries(webhookId: string, options: WebhookDeliveryListOptions = {}): Promise<WebhookDelivery[]> {
    const { limit, status, ...req } = options;
    const page = await this.client.requestJson<{ deliveries: WebhookDelivery[] }>({
      ...req,
      method: 'GET',
      path: `${await this.base(req)}/${encodeURIComponent(webhookId)}/deliveries`,
      query: { limit, status },
    });
    return page.deliveries;
  }

  /** One delivery with every attempt (ours). */
  async retrieveDelivery(
    webhookId: string,
    deliveryId: string,
    options?: RequestOptions,
  ): Promise<WebhookDeliveryDetail> {
    return this.client.requestJson<WebhookDeliveryDetail>({
      ...options,
      method: 'GET',
      path: `${await this.base(options)}/${encodeURIComponent(webhookId)}/deliveries/${encodeURIComponent(deliveryId)}`,
    });
  }

  /** Queues a delivery again (ours); resolves with it in status `pending`. */
  async resendDelivery(webhookId: string, deliveryId: string, options?: RequestOptions): Promise<WebhookDelivery> {
    return this.client.requestJson<WebhookDelivery>({
      ...options,
      method: 'POST',
      path: `${await this.base(options)}/${encodeURIComponent(webhookId)}/deliveries/${encodeURIComponent(deliveryId)}/resend`,
    });
  }
}
