/** `TroveAdminClient`: keys, webhooks and namespaces of a workspace, with an admin key. */
import { BaseClient, DEFAULT_BASE_URL, type BaseClientOptions, type RequestOptions } from './client.js';
import { APIConnectionError, APIError, APIUserAbortError, TroveError } from './errors.js';
import { camelize } from './internal/camelize.js';
import { readEnv } from './internal/env.js';
import { Keys, type KeyCreateOptions } from './resources/keys.js';
import {
  Webhooks,
  type WebhookCreateParams,
  type WebhookDeliveryListOptions,
  type WebhookUpdateParams,
} from './resources/webhooks.js';
import type {
  ApiKey,
  CreatedApiKey,
  CreatedWebhook,
  KeyRevokeResult,
  Namespace,
  NamespaceDeleteResult,
  SignupResult,
  Webhook,
  WebhookDeleteResult,
  WebhookDelivery,
  WebhookDeliveryDetail,
  WebhookTestResult,
} from './types.js';

/** Options of `TroveAdminClient`. */
export interface TroveAdminClientOptions extends BaseClientOptions {
  /** Admin key; default `TROVE_ADMIN_API_KEY`, then `TROVE_API_KEY`. */
  apiKey?: string;
  /** Workspace to manage; default `TROVE_WORKSPACE_ID`, else discovered via `GET /v1/me`. */
  workspaceId?: string;
}

/**
 * Client for workspace management with an admin key.
 * @example
 * const admin = new TroveAdminClient({ apiKey: process.env.TROVE_ADMIN_API_KEY });
 * const { apiKey } = await admin.createKey('agent-1', { namespace: 'agent-1' });
 */
export class TroveAdminClient extends BaseClient {
  /** API keys: create, list, revoke. */
  readonly keys: Keys;
  /** Webhook endpoints: create, list, update, delete, test, delivery log. */
  readonly webhooks: Webhooks;

  constructor(options: TroveAdminClientOptions = {}) {
    super(
      { ...options, workspaceId: options.workspaceId ?? readEnv('TROVE_WORKSPACE_ID') },
      options.apiKey ?? readEnv('TROVE_ADMIN_API_KEY') ?? readEnv('TROVE_API_KEY'),
      'TroveAdminClient',
    );
    this.keys = new Keys(this);
    this.webhooks = new Webhooks(this);
  }

  /** Creates an API key (alias of `keys.create`); the secret `apiKey` is shown only once. */
  createKey(name: string, options?: KeyCreateOptions): Promise<CreatedApiKey> {
    return this.keys.create(name, options);
  }

  /** Lists the active API keys (alias of `keys.list`). */
  listKeys(options?: RequestOptions): Promise<ApiKey[]> {
    return this.keys.list(options);
  }

  /** Revokes an API key (alias of `keys.revoke`). */
  revokeKey(keyId: string, options?: RequestOptions): Promise<KeyRevokeResult> {
    return this.keys.revoke(keyId, options);
  }

  /** Creates a webhook endpoint (alias of `webhooks.create`). */
  createWebhook(params: WebhookCreateParams): Promise<CreatedWebhook> {
    return this.webhooks.create(params);
  }

  /** Lists webhook endpoints (alias of `webhooks.list`). */
  listWebhooks(options?: RequestOptions): Promise<Webhook[]> {
    return this.webhooks.list(options);
  }

  /** One webhook endpoint (alias of `webhooks.retrieve`). */
  retrieveWebhook(webhookId: string, options?: RequestOptions): Promise<Webhook> {
    return this.webhooks.retrieve(webhookId, options);
  }

  /** Changes a webhook endpoint, e.g. re-enables it (alias of `webhooks.update`). */
  updateWebhook(webhookId: string, params: WebhookUpdateParams): Promise<Webhook> {
    return this.webhooks.update(webhookId, params);
  }

  /** Deletes a webhook endpoint (alias of `webhooks.delete`). */
  deleteWebhook(webhookId: string, options?: RequestOptions): Promise<WebhookDeleteResult> {
    return this.webhooks.delete(webhookId, options);
  }

  /** Sends a signed `webhook.test` delivery now (alias of `webhooks.test`). */
  testWebhook(webhookId: string, options?: RequestOptions): Promise<WebhookTestResult> {
    return this.webhooks.test(webhookId, options);
  }

  /** A webhook's delivery log, newest first (alias of `webhooks.listDeliveries`). */
  listWebhookDeliveries(webhookId: string, options?: WebhookDeliveryListOptions): Promise<WebhookDelivery[]> {
    return this.webhooks.listDeliveries(webhookId, options);
  }

  /** One delivery with every attempt (alias of `webhooks.retrieveDelivery`). */
  retrieveWebhookDelivery(
    webhookId: string,
    deliveryId: string,
    options?: RequestOptions,
  ): Promise<WebhookDeliveryDetail> {
    return this.webhooks.retrieveDelivery(webhookId, deliveryId, options);
  }

  /** Queues a delivery again (alias of `webhooks.resendDelivery`). */
  resendWebhookDelivery(webhookId: string, deliveryId: string, options?: RequestOptions): Promise<WebhookDelivery> {
    return this.webhooks.resendDelivery(webhookId, deliveryId, options);
  }

  /** Lists the workspace's namespaces (alias of `namespaces.list`). */
  listNamespaces(options?: RequestOptions): Promise<Namespace[]> {
    return this.namespaces.list(options);
  }

  /** Deletes a namespace with its files and snapshots (alias of `namespaces.delete`). */
  deleteNamespace(namespace: string, options?: RequestOptions): Promise<NamespaceDeleteResult> {
    return this.namespaces.delete(namespace, options);
  }
}

/** Options of `createWorkspace()`. */
export interface CreateWorkspaceOptions {
  /** Server URL; default `TROVE_BASE_URL`, then `http://127.0.0.1:8080`. */
  baseUrl?: string;
  /** A fetch implementation (default: the global `fetch`). */
  fetch?: typeof fetch;
  /** Aborts the call; it then rejects with `APIUserAbortError`. */
  signal?: AbortSignal;
}

/**
 * Creates a workspace through open signup (`POST /v1/workspaces`, no key needed).
 * The server must run with `TROVE_ALLOW_SIGNUP=1`; otherwise this throws `PermissionDeniedError`.
 * Never retried: a repeat would create a second workspace.
 */
export async function createWorkspace(name: string, options: CreateWorkspaceOptions = {}): Promise<SignupResult> {
  const baseUrl = (options.baseUrl ?? readEnv('TROVE_BASE_URL') ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
  const f = options.fetch ?? globalThis.fetch.bind(globalThis);
  let res: Response;
  try {
    res = await f(`${baseUrl}/v1/workspaces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ name }),
      signal: options.signal,
    });
  } catch (err) {
    if (options.signal?.aborted) throw new APIUserAbortError(undefined, err);
    throw new APIConnectionError(`Connection error: POST ${baseUrl}/v1/workspaces`, err);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  if (!res.ok) throw APIError.generate(res.status, body, res.headers);
  if (typeof body !== 'object' || body === null)
    throw new TroveError(`Unexpected signup response: ${text.slice(0, 200)}`);
  return camelize<SignupResult>(body);
}
