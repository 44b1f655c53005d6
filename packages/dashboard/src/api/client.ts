import { ApiError, NetworkError, errorFromResponse } from './errors';
import type {
  DeliveryDetail,
  ApiKey,
  CreatedApiKey,
  CreatedWebhook,
  Delivery,
  EventPage,
  ExecResult,
  FileContent,
  FileList,
  Me,
  Namespace,
  Snapshot,
  Webhook,
  WebhookTestResult,
} from './types';

type Query = Record<string, string | number | boolean | null | undefined>;

interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Sent as X-Namespace: runtime endpoints only (PROTOCOL.md). */
  namespace?: string | null;
  signal?: AbortSignal;
}

/**
 * The dashboard's only way to the server: same-origin requests to the public API with the
 * signed-in key. A 401 anywhere means the key stopped working, so the app signs out.
 */
export class TroveApi {
  readonly key: string;
  /** Called when the server rejects the key; also used by uploads that bypass fetch. */
  readonly onUnauthorized: (err: ApiError) => void;

  constructor(key: string, onUnauthorized: (err: ApiError) => void = () => {}) {
    this.key = key;
    this.onUnauthorized = onUnauthorized;
  }

  headers(namespace?: string | null): Headers {
    const h = new Headers({ authorization: `Bearer ${this.key}` });
    if (namespace) h.set('x-namespace', namespace);
    return h;
  }

  async fetch(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const headers = this.headers(opts.namespace);
    let body: BodyInit | undefined;
    if (opts.body !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      res = await fetch(withQuery(path, opts.query), { method, headers, body, signal: opts.signal });
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err;
      throw new NetworkError(err);
    }
    if (!res.ok) {
      const err = await errorFromResponse(res);
      if (res.status === 401) this.onUnauthorized(err);
      throw err;
    }
    return res;
  }

  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.fetch(method, path, opts);
    return (await res.json()) as T;
  }

  // --- identity and workspace -------------------------------------------------------------
  me(signal?: AbortSignal) {
    return this.json<Me>('GET', '/v1/me', { signal });
  }

  namespaces(ws: string, signal?: AbortSignal) {
    return this.json<{ namespaces: Namespace[] }>('GET', `${wsPath(ws)}/namespaces`, { signal });
  }

  /** Admin only: removes the namespace's files and snapshots. */
  deleteNamespace(ws: string, name: string) {
    return this.json<{ namespace: string; deleted: true }>('DELETE', `${wsPath(ws)}/namespaces/${enc(name)}`);
  }

  events(ws: string, query: Query, signal?: AbortSignal) {
    return this.json<EventPage>('GET', `${wsPath(ws)}/events`, { query, signal });
  }

  // --- files (runtime) --------------------------------------------------------------------
  listFiles(namespace: string, path: string, signal?: AbortSignal) {
    return this.json<FileList>('GET', '/v1/files', { namespace, query: { path }, signal });
  }

  fileContent(namespace: string, path: string, signal?: AbortSignal) {
    return this.json<FileContent>('GET', '/v1/files/content', { namespace, query: { path }, signal });
  }

  /** Raw bytes of a file, for image previews and downloads. */
  async fileBlob(namespace: string, path: string, signal?: AbortSignal): Promise<Blob> {
    const res = await this.fetch('GET', rawFileUrl(path), { namespace, signal });
    return res.blob();
  }

  deleteFile(namespace: string, path: string) {
    return this.json<{ deleted: string }>('POST', '/delete', { namespace, body: { path: relPath(path) } });
  }

  // --- exec (runtime) ---------------------------------------------------------------------
  exec(namespace: string, command: string, stdin?: string, signal?: AbortSignal) {
    const body: { command: string; stdin?: string } = { command };
    if (stdin !== undefined) body.stdin = stdin;
    return this.json<ExecResult>('POST', '/v1/exec', { namespace, body, signal });
  }

  // --- snapshots (runtime) ----------------------------------------------------------------
  snapshots(namespace: string, signal?: AbortSignal) {
    return this.json<{ snapshots: Snapshot[] }>('GET', '/v1/snapshots', { namespace, signal });
  }

  createSnapshot(namespace: string, label: string | null) {
    return this.json<Snapshot>('POST', '/v1/snapshots', { namespace, body: { label } });
  }

  restoreSnapshot(namespace: string, id: string) {
    return this.json<{ files_restored: number }>('POST', `/v1/snapshots/${enc(id)}/restore`, { namespace });
  }

  deleteSnapshot(namespace: string, id: string) {
    return this.json<{ snapshot_id: string; deleted: true }>('DELETE', `/v1/snapshots/${enc(id)}`, { namespace });
  }

  // --- keys (admin) -----------------------------------------------------------------------
  keys(ws: string, signal?: AbortSignal) {
    return this.json<{ keys: ApiKey[] }>('GET', `${wsPath(ws)}/keys`, { signal });
  }

  createKey(ws: string, params: { name: string; namespace: string | null; admin: boolean }) {
    return this.json<CreatedApiKey>('POST', `${wsPath(ws)}/keys`, { body: params });
  }

  revokeKey(ws: string, keyId: string) {
    return this.json<{ key_id: string; revoked: true }>('DELETE', `${wsPath(ws)}/keys/${enc(keyId)}`);
  }

  // --- webhooks (admin) -------------------------------------------------------------------
  webhooks(ws: string, signal?: AbortSignal) {
    return this.json<{ webhooks: Webhook[] }>('GET', `${wsPath(ws)}/webhooks`, { signal });
  }

  createWebhook(
    ws: string,
    params: { url: string; events: string[]; namespace: string | null; description: string | null },
  ) {
    return this.json<CreatedWebhook>('POST', `${wsPath(ws)}/webhooks`, { body: params });
  }

  updateWebhook(ws: string, id: string, params: { enabled: boolean }) {
    return this.json<Webhook>('PATCH', `${wsPath(ws)}/webhooks/${enc(id)}`, { body: params });
  }

  deleteWebhook(ws: string, id: string) {
    return this.json<{ webhook_id: string; deleted: true }>('DELETE', `${wsPath(ws)}/webhooks/${enc(id)}`);
  }

  testWebhook(ws: string, id: string) {
    return this.json<WebhookTestResult>('POST', `${wsPath(ws)}/webhooks/${enc(id)}/test`);
  }

  deliveries(ws: string, id: string, signal?: AbortSignal) {
    return this.json<{ deliveries: Delivery[] }>('GET', `${wsPath(ws)}/webhooks/${enc(id)}/deliveries`, {
      signal,
    });
  }

  delivery(ws: string, id: string, deliveryId: string, signal?: AbortSignal) {
    return this.json<DeliveryDetail>('GET', `${wsPath(ws)}/webhooks/${enc(id)}/deliveries/${enc(deliveryId)}`, {
      signal,
    });
  }

  resendDelivery(ws: string, id: string, deliveryId: string) {
    return this.json<Partial<Delivery>>(
      'POST',
      `${wsPath(ws)}/webhooks/${enc(id)}/deliveries/${enc(deliveryId)}/resend`,
    );
  }
}

const enc = encodeURIComponent;

function wsPath(ws: string): string {
  return `/v1/workspaces/${enc(ws)}`;
}

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    qs.set(k, String(v));
  }
  const s = qs.toString();
  return s ? `${path}?${s}` : path;
}

/** `workspace/a/b.txt` → `a/b.txt`: the namespace-relative form `/write`, `/delete` and `/files/` take. */
export function relPath(path: string): string {
  let p = path.replace(/^\/+/, '');
  if (p === 'workspace') return '';
  if (p.startsWith('workspace/')) p = p.slice('workspace/'.length);
  return p;
}

/**
 * `/files/<rel>` with every segment percent-encoded, so names with `?`, `#`, `%` or spaces
 * round-trip (the server decodes the path exactly once).
 */
export function rawFileUrl(path: string): string {
  return '/files/' + relPath(path).split('/').map(enc).join('/');
}
