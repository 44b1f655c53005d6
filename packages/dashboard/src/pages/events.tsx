import { useEffect, useId, useState, type FormEvent } from 'react';
import type { TroveEvent } from 'trove-sdk';
import { ErrorMessage } from '../components/error-message';
import { Stamp } from '../components/stamp';
import { canRuntime, useSession } from '../context';
import { useEventFeed, type FeedMode } from '../lib/event-feed';
import { commandOf, sourceBadge, type SourceFilter } from '../lib/event-source';
import { summarize } from '../lib/event-summary';
import { EVENT_TYPES } from '../lib/event-types';
import { Link, href, navigate, useRoute } from '../lib/router';
import { useMediaQuery } from '../lib/use-media-query';
import { toWire } from '../lib/wire-json';

const MODE_LABELS: Record<FeedMode, string> = {
  poll: 'Live (long-poll)',
  stream: 'Live (stream)',
  paused: 'Paused',
};

const SOURCE_LABELS: Record<SourceFilter, string> = {
  '': 'All sources',
  exec: 'Commands (exec)',
  api: 'Files API',
};

/** Filters live in the URL so a filtered feed can be bookmarked or shared. */
export function EventsPage() {
  const { trove, me } = useSession();
  const route = useRoute();
  const types = (route.params.get('types') ?? '').split(',').filter(Boolean);
  const lockedNs = me.namespace;
  const namespace = lockedNs ?? route.params.get('namespace') ?? '';
  const modeParam = route.params.get('live');
  const mode: FeedMode = modeParam === 'stream' || modeParam === 'paused' ? modeParam : 'poll';
  const sourceParam = route.params.get('source');
  const source: SourceFilter = sourceParam === 'exec' || sourceParam === 'api' ? sourceParam : '';
  const feed = useEventFeed(trove, { types, namespace, source }, mode);
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [nsDraft, setNsDraft] = useState(namespace);
  const [knownNs, setKnownNs] = useState<string[]>([]);
  const nsId = useId();
  const modeId = useId();
  const sourceId = useId();

  useEffect(() => setNsDraft(namespace), [namespace]);

  useEffect(() => {
    if (lockedNs) return;
    const ctrl = new AbortController();
    trove.namespaces.list({ signal: ctrl.signal }).then(
      (list) => setKnownNs(list.map((n) => n.name)),
      () => {},
    );
    return () => ctrl.abort();
  }, [trove, lockedNs]);

  const update = (next: { types?: string[]; namespace?: string; live?: FeedMode; source?: SourceFilter }) => {
    const t = next.types ?? types;
    const n = next.namespace ?? namespace;
    const l = next.live ?? mode;
    const src = next.source ?? source;
    navigate(
      href('events', {
        types: t.length ? t.join(',') : null,
        namespace: lockedNs ? null : n || null,
        source: src || null,
        live: l === 'poll' ? null : l,
      }),
      { replace: true },
    );
  };

  const toggleType = (t: string) => update({ types: types.includes(t) ? types.filter((x) => x !== t) : [...types, t] });

  const applyNs = (e?: FormEvent) => {
    e?.preventDefault();
    if (nsDraft.trim() !== namespace) update({ namespace: nsDraft.trim() });
  };

  const selected = feed.events.find((e) => e.id === selectedId) ?? null;
  // On a phone the detail opens under its row instead of in a pane far below the list.
  const narrow = useMediaQuery('(max-width: 760px)');
  const stateLabel =
    feed.state === 'live'
      ? 'Live'
      : feed.state === 'loading'
        ? 'Loading…'
        : feed.state === 'paused'
          ? 'Paused'
          : 'Reconnecting…';

  return (
    <>
      <div className="page-head">
        <h1 tabIndex={-1}>Events</h1>
        <span className={`live-state live-${feed.state}`} role="status" data-testid="feed-state">
          <span className="dot" aria-hidden="true" /> {stateLabel}
        </span>
      </div>
      <form className="filters card" onSubmit={applyNs} aria-label="Event filters">
        <fieldset>
          <legend>Types {types.length === 0 ? <span className="muted">(all)</span> : null}</legend>
          <div className="chips">
            {EVENT_TYPES.map((t) => (
              <label key={t} className={`chip${types.includes(t) ? ' on' : ''}`}>
                <input type="checkbox" checked={types.includes(t)} onChange={() => toggleType(t)} />
                {t}
              </label>
            ))}
          </div>
          {types.length ? (
            <button type="button" className="link-button" onClick={() => update({ types: [] })}>
              Show all types
            </button>
          ) : null}
        </fieldset>
        <div className="field-row">
          <div className="field">
            <label htmlFor={nsId}>Namespace</label>
            {lockedNs ? (
              <input id={nsId} className="mono" value={lockedNs} readOnly />
            ) : (
              <>
                <input
                  id={nsId}
                  className="mono"
                  list={`${nsId}-list`}
                  value={nsDraft}
                  placeholder="all namespaces"
                  onChange={(e) => setNsDraft(e.target.value)}
                  onBlur={() => applyNs()}
                  autoComplete="off"
                  spellCheck={false}
                />
                <datalist id={`${nsId}-list`}>
                  {knownNs.map((n) => (
                    <option key={n} value={n} />
                  ))}
                </datalist>
              </>
            )}
          </div>
          <div className="field">
            <label htmlFor={sourceId}>Made by</label>
            <select id={sourceId} value={source} onChange={(e) => update({ source: e.target.value as SourceFilter })}>
              {(Object.keys(SOURCE_LABELS) as SourceFilter[]).map((s) => (
                <option key={s} value={s}>
                  {SOURCE_LABELS[s]}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={modeId}>Updates</label>
            <select id={modeId} value={mode} onChange={(e) => update({ live: e.target.value as FeedMode })}>
              {(Object.keys(MODE_LABELS) as FeedMode[]).map((m) => (
                <option key={m} value={m}>
                  {MODE_LABELS[m]}
                </option>
              ))}
            </select>
          </div>
          {!lockedNs ? (
            <button type="submit" className="field-button">
              Apply
            </button>
          ) : null}
        </div>
      </form>
      <ErrorMessage error={feed.error} />
      <div className="events-panes">
        <section aria-label="Event list" className="event-list-pane">
          {feed.events.length === 0 && feed.state !== 'loading' ? (
            <p className="muted">
              No events yet{types.length || namespace || source ? ' matching these filters' : ''}. New ones appear here
              as they happen.
            </p>
          ) : null}
          <ol className="event-list" data-testid="event-list">
            {feed.events.map((e) => (
              <li key={e.id}>
                <button
                  type="button"
                  className={`event-row${e.id === selectedId ? ' selected' : ''}`}
                  aria-expanded={e.id === selectedId}
                  onClick={() => setSelectedId(e.id === selectedId ? null : e.id)}
                  data-event-type={e.type}
                >
                  <Stamp iso={e.createdAt} />
                  <span className={`badge type-${e.type.split('.')[0]}`}>{e.type}</span>
                  <span className="mono event-ns">{e.namespace ?? '—'}</span>
                  <span className="event-summary">{summarize(e)}</span>
                </button>
                <MadeBy event={e} canOpen={canRuntime(me)} />
                {narrow && e.id === selectedId ? (
                  <div className="event-inline-detail">
                    <EventJson event={e} />
                  </div>
                ) : null}
              </li>
            ))}
          </ol>
          {feed.olderCursor ? (
            <button type="button" onClick={feed.loadOlder} disabled={feed.loadingOlder}>
              {feed.loadingOlder ? 'Loading…' : 'Load older events'}
            </button>
          ) : null}
        </section>
        {!narrow ? (
          <section className="event-detail-pane" aria-label="Event detail">
            {selected ? (
              <>
                <div className="preview-head">
                  <h2>{selected.type}</h2>
                  <button type="button" onClick={() => setSelectedId(null)}>
                    Close
                  </button>
                </div>
                <EventJson event={selected} />
              </>
            ) : (
              <p className="muted">Select an event to see its JSON.</p>
            )}
          </section>
        ) : null}
      </div>
    </>
  );
}

/**
 * Which source made a change (a badge) and, when the event names it, the command: an exec's id,
 * or a link to the background process on the Terminal page. Outside the row's button, so the
 * link is a link of its own.
 */
function MadeBy({ event, canOpen }: { event: TroveEvent; canOpen: boolean }) {
  const source = sourceBadge(event);
  const command = commandOf(event);
  if (!source && !command) return null;
  return (
    <div className="event-by" data-testid="event-source">
      {source ? (
        <span
          className={`badge source-${source}`}
          title={source === 'exec' ? 'Made by a command in the sandbox' : 'Made through the files API'}
        >
          {source}
        </span>
      ) : null}
      {command?.kind === 'process' ? (
        <span>
          by process{' '}
          {canOpen && event.namespace ? (
            <Link className="mono" href={href('exec', { ns: event.namespace, process: command.id })}>
              {command.id}
            </Link>
          ) : (
            <span className="mono">{command.id}</span>
          )}
        </span>
      ) : command?.kind === 'exec' ? (
        <span>
          by command <span className="mono">{command.id}</span>
        </span>
      ) : null}
    </div>
  );
}

/** The event as the API and webhooks send it (snake_case keys). */
function EventJson({ event }: { event: TroveEvent }) {
  return (
    <pre className="json" tabIndex={0} aria-label={`JSON of event ${event.id}`} data-testid="event-json">
      {JSON.stringify(toWire(event), null, 2)}
    </pre>
  );
}
