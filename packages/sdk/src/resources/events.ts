/**
 * `GET /v1/workspaces/{ws}/events` (paged, newest first; `wait` long-polls) and the
 * SSE feed `GET /v1/workspaces/{ws}/webhooks/stream`.
 */
import type { BaseClient, RequestOptions } from '../client.js';
import { APIUserAbortError, TroveError } from '../errors.js';
import { camelize } from '../internal/camelize.js';
import { sleep } from '../internal/sleep.js';
import { readSseData } from '../internal/sse.js';
import type { EventSource, EventType, TroveEvent } from '../types.js';

/** Filters of `events.list()`. */
export interface EventListParams extends RequestOptions {
  /** Only events strictly newer than this (`createdAt` strings are accepted verbatim). */
  since?: string | Date;
  /** Only these types. */
  types?: readonly (EventType | (string & {}))[];
  /** Only this namespace's events (a namespace-scoped key sees only its own anyway). */
  namespace?: string;
  /** Ours: only events whose `data.source` is one of these (`exec`: changes made by commands; `api`: the files API's). */
  source?: EventSource | readonly EventSource[];
  /** Page size, 1–200 (server default 20). */
  limit?: number;
  /** `nextCursor` of a previous page with the same filters. */
  cursor?: string;
  /** Ours: hold the request up to this many seconds (≤ 30) until a matching event newer than `since` exists. */
  wait?: number;
}

/** Options of `events.tail()`. */
export interface EventTailParams {
  /** Only these types. */
  types?: readonly (EventType | (string & {}))[];
  /** Only this namespace's events. */
  namespace?: string;
  /** Ours: only events whose `data.source` is one of these (`exec`: changes made by commands; `api`: the files API's). */
  source?: EventSource | readonly EventSource[];
  /** Start after this event time; default: now (only events that happen after the call). */
  since?: string | Date;
  /** Stops the iteration (it then simply ends). */
  signal?: AbortSignal;
  /** Long-poll duration per request, 1–30 s (default 25). */
  waitSeconds?: number;
  /** Pause between requests against servers that ignore `wait` (default 1500 ms). */
  pollIntervalMs?: number;
}

/** Options of `events.stream()`. */
export interface EventStreamParams {
  /** Ours: only these types. */
  types?: readonly (EventType | (string & {}))[];
  /** Ours: only this namespace's events. */
  namespace?: string;
  /** Ours: only events whose `data.source` is one of these (`exec`: changes made by commands; `api`: the files API's). */
  source?: EventSource | readonly EventSource[];
  /** Ours: seconds between the server's `: ping` heartbeats, 1–60 (server default 15). */
  heartbeatSeconds?: number;
  /** Closes the connection; the iteration then simply ends. */
  signal?: AbortSignal;
  /** Called once the server confirms the subscription (its `{"type": "connected"}` message). */
  onConnected?: () => void;
}

interface RawPage {
  events: TroveEvent[];
  nextCursor: string | null;
}

/** One page of events, newest first; iterating it walks this and every older page. */
export class EventPage implements AsyncIterable<TroveEvent> {
  /** The events of this page, newest first. */
  readonly events: TroveEvent[];
  /** Pass as `cursor` (with the same filters) for the next, older page; `null` at the end. */
  readonly nextCursor: string | null;

  readonly #owner: Events;
  readonly #params: EventListParams;

  /** @internal */
  constructor(owner: Events, params: EventListParams, raw: RawPage) {
    this.#owner = owner;
    this.#params = params;
    this.events = raw.events;
    this.nextCursor = raw.nextCursor;
  }

  /** Whether an older page exists. */
  hasNextPage(): boolean {
    return this.nextCursor !== null;
  }

  /** Fetches the next, older page; throws when there is none. */
  async getNextPage(): Promise<EventPage> {
    if (this.nextCursor === null) throw new TroveError('No next page: check hasNextPage() first');
    const { wait: _wait, ...rest } = this.#params;
    return this.#owner.fetchPage({ ...rest, cursor: this.nextCursor });
  }

  /** This page and every older one. */
  async *iterPages(): AsyncGenerator<EventPage> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the walk starts at this page and moves to older ones
    let page: EventPage = this;
    for (;;) {
      yield page;
      if (!page.hasNextPage()) return;
      page = await page.getNextPage();
    }
  }

  /** Every event from this page on, newest first, fetching older pages as needed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<TroveEvent> {
    for await (const page of this.iterPages()) yield* page.events;
  }
}

/**
 * What `events.list()` returns: await it for the first page, or iterate it with
 * `for await` for every matching event across pages (newest first).
 */
export class EventPagePromise implements PromiseLike<EventPage>, AsyncIterable<TroveEvent> {
  #promise: Promise<EventPage> | undefined;
  readonly #load: () => Promise<EventPage>;

  /** @internal */
  constructor(load: () => Promise<EventPage>) {
    this.#load = load;
  }

  #get(): Promise<EventPage> {
    // Lazy, so a list() that is never awaited sends nothing and cannot reject unhandled.
    return (this.#promise ??= this.#load());
  }

  /** Resolves with the first page. */
  then<R1 = EventPage, R2 = never>(
    onfulfilled?: ((value: EventPage) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#get().then(onfulfilled, onrejected);
  }

  /** Like `Promise.prototype.catch`, for the first page. */
  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<EventPage | R> {
    return this.#get().catch(onrejected);
  }

  /** Like `Promise.prototype.finally`, for the first page. */
  finally(onfinally?: (() => void) | null): Promise<EventPage> {
    return this.#get().finally(onfinally);
  }

  /** Every matching event across pages, newest first. */
  async *[Symbol.asyncIterator](): AsyncGenerator<TroveEvent> {
    yield* await this.#get();
  }
}

/** Events of the workspace (`client.events`, `admin.events`). */
export class Events {
  constructor(private readonly client: BaseClient) {}

  /**
   * One page of events (newest first), or — with `for await` — every matching event across pages.
   * Needs the workspace id, discovered via `/v1/me` unless the client was given one.
   */
  list(params: EventListParams = {}): EventPagePromise {
    return new EventPagePromise(() => this.fetchPage(params));
  }

  /** @internal */
  async fetchPage(params: EventListParams): Promise<EventPage> {
    const { since, types, namespace, source, limit, cursor, wait, ...req } = params;
    const ws = await this.client.getWorkspaceId(req);
    const timeoutMs = wait ? Math.max(req.timeoutMs ?? this.client.timeoutMs, wait * 1000 + 15_000) : req.timeoutMs;
    const raw = await this.client.requestJson<RawPage>({
      ...req,
      timeoutMs,
      method: 'GET',
      path: `/v1/workspaces/${encodeURIComponent(ws)}/events`,
      query: {
        limit,
        namespace,
        types: types && types.length > 0 ? types.join(',') : undefined,
        source: sourceQuery(source),
        since: since === undefined ? undefined : toIso(since),
        cursor,
        wait,
      },
    });
    return new EventPage(this, params, raw);
  }

  /**
   * Yields new events oldest first as they happen, until `signal` aborts or the loop breaks.
   * Uses the server's long-poll (`wait`) so an event arrives as soon as its request has answered;
   * against servers without it, falls back to polling every `pollIntervalMs`.
   */
  async *tail(params: EventTailParams = {}): AsyncGenerator<TroveEvent, void, undefined> {
    const { types, namespace, source, signal } = params;
    const waitSeconds = Math.min(30, Math.max(1, Math.round(params.waitSeconds ?? 25)));
    const pollIntervalMs = params.pollIntervalMs ?? 1500;
    try {
      let since: string | undefined =
        params.since !== undefined ? toIso(params.since) : await this.newestCreatedAt(namespace, signal);
      while (!signal?.aborted) {
        const started = Date.now();
        const batch = await this.collectNewer({ since, types, namespace, source, signal, wait: waitSeconds });
        if (batch.length === 0) {
          // A server that honours `wait` holds an empty answer for the full wait; an empty answer
          // within a second means it ignored `wait`, so pause instead of spinning.
          if (Date.now() - started < 1000) await sleep(pollIntervalMs, signal);
          continue;
        }
        for (const event of batch) {
          since = event.createdAt;
          yield event;
        }
      }
    } catch (err) {
      // Aborting is how callers stop a tail: end the iteration instead of throwing.
      if (err instanceof APIUserAbortError && signal?.aborted) return;
      throw err;
    }
  }

  /**
   * Yields every new event as it happens over Server-Sent Events (`…/webhooks/stream`), until
   * `signal` aborts or the server closes the connection. There is no replay: events that
   * happen while disconnected are only available through `list()` / `tail({since})`.
   */
  async *stream(params: EventStreamParams = {}): AsyncGenerator<TroveEvent, void, undefined> {
    const { signal, onConnected, types, namespace, source, heartbeatSeconds } = params;
    try {
      const ws = await this.client.getWorkspaceId({ signal });
      const body = await this.client.request(
        {
          method: 'GET',
          path: `/v1/workspaces/${encodeURIComponent(ws)}/webhooks/stream`,
          query: {
            types: types && types.length > 0 ? types.join(',') : undefined,
            namespace,
            source: sourceQuery(source),
            heartbeat: heartbeatSeconds,
          },
          headers: { accept: 'text/event-stream' },
          signal,
          stream: true,
        },
        async (res) => {
          if (!res.body) throw new TroveError('Event stream has no body');
          return res.body;
        },
      );
      for await (const data of readSseData(body)) {
        let message: unknown;
        try {
          message = JSON.parse(data);
        } catch {
          continue;
        }
        if ((message as { type?: unknown }).type === 'connected') {
          onConnected?.();
          continue;
        }
        yield camelize<TroveEvent>(message);
      }
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
  }

  /** `createdAt` of the newest visible event, the starting point of a tail "from now". */
  private async newestCreatedAt(namespace: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const page = await this.fetchPage({ limit: 1, namespace, signal });
    return page.events[0]?.createdAt;
  }

  /** Every matching event newer than `since`, oldest first (follows cursors when a page is full). */
  private async collectNewer(params: EventListParams): Promise<TroveEvent[]> {
    const newestFirst: TroveEvent[] = [];
    let page = await this.fetchPage({ ...params, limit: 200 });
    newestFirst.push(...page.events);
    while (page.hasNextPage()) {
      page = await page.getNextPage();
      newestFirst.push(...page.events);
    }
    return newestFirst.reverse();
  }
}

/** `source` as the query string takes it: comma-separated, absent when empty. */
function sourceQuery(source: EventSource | readonly EventSource[] | undefined): string | undefined {
  if (source === undefined) return undefined;
  const list = typeof source === 'string' ? [source] : source;
  return list.length > 0 ? list.join(',') : undefined;
}

function toIso(value: string | Date): string {
  return typeof value === 'string' ? value : value.toISOString();
}
