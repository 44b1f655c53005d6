import { useEffect, useRef, useState } from 'react';
import type { TroveApi } from '../api/client';
import { isAbort } from '../api/errors';
import { readEventStream } from '../api/sse';
import type { TroveEvent } from '../api/types';

export type FeedMode = 'poll' | 'stream' | 'paused';
export type FeedState = 'loading' | 'live' | 'paused' | 'reconnecting';

export interface FeedFilters {
  types: string[];
  namespace: string;
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
 * The live events feed. Long-poll mode asks `GET …/events?since=<newest>&wait=25`, which answers
 * as soon as a matching event exists; stream mode reads the SSE stream and, after every
 * (re)connect, catches up through `since` so nothing that happened while disconnected is lost.
 * `created_at` is unique and increasing per workspace, so `since` never skips or repeats events.
 */
export function useEventFeed(api: TroveApi, workspaceId: string, filters: FeedFilters, mode: FeedMode): Feed {
  const [events, setEvents] = useState<TroveEvent[]>([]);
  const [state, setState] = useState<FeedState>('loading');
  const [error, setError] = useState<unknown>(null);
  const [olderCursor, setOlderCursor] = useState<string | null>(null);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const typesKey = filters.types.join(',');
  const query = useRef({ types: typesKey, namespace: filters.namespace });
  query.current = { types: typesKey, namespace: filters.namespace };

  useEffect(() => {
    const ctrl = new AbortController();
    const signal = ctrl.signal;
    const q = { types: typesKey || undefined, namespace: filters.namespace || undefined };
    const typeSet = new Set(filters.types);
    let newest: string | null = null;

    const merge = (incoming: TroveEvent[]) => {
      if (!incoming.length) return;
      for (const e of incoming) if (!newest || e.created_at > newest) newest = e.created_at;
      setEvents((prev) => {
        const byId = new Map(prev.map((e) => [e.id, e]));
        for (const e of incoming) byId.set(e.id, e);
        return [...byId.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1)).slice(0, KEEP);
      });
    };

    // Everything newer than `newest`, following next_cursor when a page comes back full.
    const fetchNewer = async (wait?: number) => {
      const since = newest ?? EPOCH;
      let page = await api.events(workspaceId, { ...q, since, limit: PAGE, wait }, signal);
      const got = [...page.events];
      while (page.events.length === PAGE && page.next_cursor) {
        page = await api.events(workspaceId, { ...q, since, limit: PAGE, cursor: page.next_cursor }, signal);
        got.push(...page.events);
      }
      merge(got);
    };

    const matches = (e: TroveEvent) =>
      (typeSet.size === 0 || typeSet.has(e.type)) && (!filters.namespace || e.namespace === filters.namespace);

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
          const first = await api.events(workspaceId, { ...q, limit: INITIAL }, signal);
          merge(first.events);
          setOlderCursor(first.next_cursor);
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
            await readEventStream(api, workspaceId, q, signal, (msg) => {
              if (msg.type === 'connected') {
                setState('live');
                setError(null);
                // Fill the gap between the last event we saw and the moment the stream opened.
                fetchNewer().catch((err: unknown) => {
                  if (!signal.aborted && !isAbort(err)) setError(err);
                });
              } else if ('id' in msg && matches(msg)) {
                // The server filters too; checking again keeps an older server's extra events out.
                merge([msg]);
              }
            });
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
  }, [api, workspaceId, typesKey, filters.namespace, mode]); // eslint-disable-line react-hooks/exhaustive-deps

  const loadOlder = () => {
    if (!olderCursor || loadingOlder) return;
    setLoadingOlder(true);
    const asked = query.current;
    const { types, namespace } = asked;
    api
      .events(workspaceId, { types: types || undefined, namespace: namespace || undefined, limit: INITIAL, cursor: olderCursor })
      .then(
        (page) => {
          // The filters changed while this page was loading: it belongs to a feed that is gone.
          if (query.current.types !== asked.types || query.current.namespace !== asked.namespace) return;
          setEvents((prev) => {
            const ids = new Set(prev.map((e) => e.id));
            return [...prev, ...page.events.filter((e) => !ids.has(e.id))];
          });
          setOlderCursor(page.next_cursor);
        },
        (err: unknown) => setError(err),
      )
      .finally(() => setLoadingOlder(false));
  };

  return { events, state, error, olderCursor, loadingOlder, loadOlder };
}
