import { useEffect, useRef, useState } from 'react';
import type { EventListParams, TroveClient, TroveEvent } from 'trove-sdk';
import { isAbort } from './errors';
import { matchesSource, type SourceFilter } from './event-source';

export type FeedMode = 'poll' | 'stream' | 'paused';
export type FeedState = 'loading' | 'live' | 'paused' | 'reconnecting';

export interface FeedFilters {
  types: string[];
  namespace: string;
  /** Only changes made by commands (`exec`) or by the files API (`api`): the events API's `source`. */
  source: SourceFilter;
}

const PAGE = 200;
const INITIAL = 50;
const KEEP = 1000;
const WAIT_SECONDS = 25;
// Any event is newer than this, so a long-poll on an empty workspace waits for the first one.
const EPOCH = '1970-01-01T00:00:00.000Z';

export interface Feed {
  events: TroveEvent[];
  state: FeedState;
  error: unknown;
  olderCursor: string | null;
  loadingOlder: boolean;
  loadOlder: () => void;
}

/**
 * The live events feed, through the SDK's events resource. Long-poll mode asks
 * `events.list({since: <newest>, wait: 25})`, which answers as soon as a matching event exists;
 * stream mode reads `events.stream()` and, after every (re)connect, catches up through `since` so
 * nothing that happened while disconnected is lost. `createdAt` is unique and increasing per
 * workspace, so `since` never skips or repeats events.
 */
export function useEventFeed(trove: TroveClient, filters: FeedFilters, mode: FeedMode): Feed {
  const [events, setEvents] = useState<TroveEvent[]>([]);
  const [state, setState] = useState<FeedState>('loading');
  const [error, setError] = useState<unknown>(null);
  const [olderCursor, setOlderCursor] = useState<string | null>(null);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const typesKey = filters.types.join(',');
  const { namespace, source } = filters;
  const query = useRef({ types: typesKey, namespace, source });
  query.current = { types: typesKey, namespace, source };

  useEffect(() => {
    const ctrl = new AbortController();
    const signal = ctrl.signal;
    const types = typesKey ? typesKey.split(',') : undefined;
    const q: EventListParams = { types, namespace: namespace || undefined, source: source || undefined, signal };
    const typeSet = new Set(types);
    let newest: string | null = null;

    const matches = (e: TroveEvent) =>
      (typeSet.size === 0 || typeSet.has(e.type)) &&
      (!namespace || e.namespace === namespace) &&
      matchesSource(e, source);

    const merge = (incoming: TroveEvent[]) => {
      // `newest` follows every event received, shown or not, so the next `since` moves on.
      for (const e of incoming) if (!newest || e.createdAt > newest) newest = e.createdAt;
      const shown = incoming.filter(matches);
      if (!shown.length) return;
      setEvents((prev) => {
        const byId = new Map(prev.map((e) => [e.id, e]));
        for (const e of shown) byId.set(e.id, e);
        return [...byId.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1)).slice(0, KEEP);
      });
    };

    // Everything newer than `newest`, following nextCursor when a page comes back full.
    const fetchNewer = async (wait?: number) => {
      const since = newest ?? EPOCH;
      let page = await trove.events.list({ ...q, since, limit: PAGE, wait });
      const got = [...page.events];
      while (page.events.length === PAGE && page.hasNextPage()) {
        page = await page.getNextPage();
        got.push(...page.events);
      }
      merge(got);
    };

    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });

    let backoff = 1000;
    // After a failure: show it, wait (doubling up to 30 s), then the caller tries again.
    // Returns false when the feed was closed meanwhile.
    const pauseAfter = async (err: unknown): Promise<boolean> => {
      if (signal.aborted || isAbort(err)) return false;
      setError(err);
      setState('reconnecting');
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 30_000);
      return true;
    };

    const run = async () => {
      setEvents([]);
      setError(null);
      setState('loading');
      // The first page, retried until it works (e.g. the server is restarting).
      for (;;) {
        try {
          const first = await trove.events.list({ ...q, limit: INITIAL });
          merge(first.events);
          setOlderCursor(first.nextCursor);
          setError(null);
          break;
        } catch (err) {
          if (!(await pauseAfter(err))) return;
        }
      }
      if (mode === 'paused') {
        setState('paused');
        return;
      }
      backoff = 1000;
      while (!signal.aborted) {
        try {
          if (mode === 'poll') {
            setState('live');
            await fetchNewer(WAIT_SECONDS);
          } else {
            const stream = trove.events.stream({
              types,
              namespace: namespace || undefined,
              source: source || undefined,
              signal,
              onConnected: () => {
                setState('live');
                setError(null);
                // Fill the gap between the last event we saw and the moment the stream opened.
                fetchNewer().catch((err: unknown) => {
                  if (!signal.aborted && !isAbort(err)) setError(err);
                });
              },
            });
            // The server filters too; checking again keeps the extra events of an older server out.
            for await (const e of stream) merge([e]);
            // The server closed the stream (restart, proxy timeout): reconnect.
            if (!signal.aborted) setState('reconnecting');
          }
          setError(null);
          backoff = 1000;
        } catch (err) {
          if (!(await pauseAfter(err))) return;
        }
      }
    };
    void run();
    return () => ctrl.abort();
  }, [trove, typesKey, namespace, source, mode]);

  const loadOlder = () => {
    if (!olderCursor || loadingOlder) return;
    setLoadingOlder(true);
    const asked = query.current;
    trove.events
      .list({
        types: asked.types ? asked.types.split(',') : undefined,
        namespace: asked.namespace || undefined,
        source: asked.source || undefined,
        limit: INITIAL,
        cursor: olderCursor,
      })
      .then(
        (page) => {
          const now = query.current;
          // The filters changed while this page was loading: it belongs to a feed that is gone.
          if (now.types !== asked.types || now.namespace !== asked.namespace || now.source !== asked.source) return;
          const shown = page.events.filter((e) => matchesSource(e, asked.source));
          setEvents((prev) => {
            const ids = new Set(prev.map((e) => e.id));
            return [...prev, ...shown.filter((e) => !ids.has(e.id))];
          });
          setOlderCursor(page.nextCursor);
        },
        (err: unknown) => setError(err),
      )
      .finally(() => setLoadingOlder(false));
  };

  return { events, state, error, olderCursor, loadingOlder, loadOlder };
}
