import { ApiError, NetworkError, errorFromResponse, isAbort } from './errors';
import { OutputDecoder, type ExecStreamEvent, type ProcessStreamEvent, type WireChunk } from './output';
import { readSse } from './sse';
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
  Process,
  Snapshot,
  Webhook,
  WebhookTestResult,
} from './types';

type Query = Record<string, string | number | boolean | null | undefined>;

interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Sent as X-Namespace: runtime endpoints only (docs/protocol.md). */
  namespace?: string | null;
  signal?: AbortSignal;
  /** Overrides `Accept` (streams). */
  accept?: string;
  /** Extra headers. */
  headers?: Record<string, string>;
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
    if (opts.accept) headers.set('accept', opts.accept);
    for (const [k, v] of Object.entries(opts.headers ?? {})) headers.set(k, v);
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

  /**
   * Runs a command and reports its output as it is written (`Accept: text/event-stream`), then its
   * exit. A server without live exec answers JSON: the same events, at once.
   */
  async execStream(
    namespace: string,
    command: string,
    stdin: string | undefined,
    signal: AbortSignal,
    onEvent: (event: ExecStreamEvent) => void,
  ): Promise<void> {
    const body: { command: string; stdin?: string; stream: true } = { command, stream: true };
    if (stdin !== undefined) body.stdin = stdin;
    const res = await this.fetch('POST', '/v1/exec', { namespace, body, signal, accept: 'text/event-stream' });
    if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
      const r = (await res.json()) as ExecResult;
      if (r.stdout) onEvent({ type: 'stdout', offset: 0, bytes: r.stdout.length, text: r.stdout });
      if (r.stderr) onEvent({ type: 'stderr', offset: 0, bytes: r.stderr.length, text: r.stderr });
      onEvent({ type: 'exit', exit_code: r.exit_code, exit_reason: r.exit_reason ?? 'exited', duration_ms: r.duration_ms });
      return;
    }
    if (!res.body) throw new Error('This browser cannot read streamed responses.');
    const decoder = new OutputDecoder();
    let exit: Extract<ExecStreamEvent, { type: 'exit' }> | undefined;
    let error: { detail: string; code: string } | undefined;
    await readSse(res.body, (msg) => {
      if (msg.event === 'stdout' || msg.event === 'stderr') onEvent(decoder.chunk(msg.event, JSON.parse(msg.data) as WireChunk));
      else if (msg.event === 'exit') exit = { type: 'exit', ...(JSON.parse(msg.data) as Omit<ExecStreamEvent & { type: 'exit' }, 'type'>) };
      else if (msg.event === 'error') error = JSON.parse(msg.data) as { detail: string; code: string };
    });
    // The `error` event (a timeout) may come on either side of `exit`: report them together.
    if (!exit) throw new Error('The connection was lost before the command ended.');
    onEvent(error ? { ...exit, error } : exit);
  }

  // --- background processes (runtime) -----------------------------------------------------
  processes(namespace: string, signal?: AbortSignal) {
    return this.json<{ processes: Process[] }>('GET', '/v1/processes', { namespace, query: { limit: 100 }, signal });
  }

  startProcess(namespace: string, command: string) {
    return this.json<Process>('POST', '/v1/processes', { namespace, body: { command } });
  }

  signalProcess(namespace: string, id: string, sig: 'SIGTERM' | 'SIGKILL') {
    return this.json<{ process_id: string; signal: string; delivered: boolean }>('POST', `/v1/processes/${enc(id)}/signal`, {
      namespace,
      body: { signal: sig },
    });
  }

  /**
   * Follows a process's output live from the start until it exits. A dropped connection is
   * resumed with `Last-Event-ID` (a few times in a row at most), so no byte shows twice or is lost.
   */
  async followProcess(namespace: string, id: string, signal: AbortSignal, onEvent: (event: ProcessStreamEvent) => void): Promise<void> {
    const decoder = new OutputDecoder();
    let lastEventId: string | undefined;
    for (let failures = 0; ; ) {
      let received = false;
      let ended = false;
      try {
        const res = await this.fetch('GET', `/v1/processes/${enc(id)}/stream`, {
          namespace,
          signal,
          accept: 'text/event-stream',
          headers: lastEventId ? { 'last-event-id': lastEventId } : {},
        });
        if (!res.body) throw new Error('This browser cannot read streamed responses.');
        await readSse(res.body, (msg) => {
          received = true;
          if (msg.event === 'stdout' || msg.event === 'stderr') {
            onEvent(decoder.chunk(msg.event, JSON.parse(msg.data) as WireChunk));
            if (msg.id) lastEventId = msg.id;
          } else if (msg.event === 'exit') {
            ended = true;
            onEvent({ type: 'exit', process: JSON.parse(msg.data) as Process });
          }
        });
        if (ended) return;
      } catch (err) {
        // Answers (404, 401) are final; so is the user leaving.
        if (isAbort(err) || err instanceof ApiError || signal.aborted) throw err;
      }
      failures = received ? 0 : failures + 1;
      if (failures > 3) throw new NetworkError(new Error(`the output stream of ${id} keeps dropping`));
      await new Promise((r) => setTimeout(r, 250 * 2 ** failures));
    }
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
