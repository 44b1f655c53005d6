import { useSession, canRuntime, isAdmin } from '../context';
import { Link, href } from '../lib/router';
import { useLoad } from '../lib/use-load';
import { ErrorMessage } from '../components/error-message';
import { Stamp } from '../components/stamp';

export function Overview() {
  const { trove, me, namespace } = useSession();
  const recent = useLoad(async (signal) => (await trove.events.list({ limit: 5, signal })).events, [trove]);

  return (
    <>
      <h1 tabIndex={-1}>Overview</h1>
      <section className="card" aria-labelledby="whoami">
        <h2 id="whoami">Signed in</h2>
        <dl className="facts">
          <dt>Key</dt>
          <dd>
            {me.keyName} <span className="muted mono">{me.keyId}</span>
          </dd>
          <dt>Scope</dt>
          <dd>
            {me.scope === 'admin'
              ? 'Admin: manages keys and webhooks, reads events'
              : 'Workspace: files, terminal, snapshots, events'}
          </dd>
          <dt>Namespace</dt>
          <dd className="mono">{me.namespace ?? (me.scope === 'admin' ? '—' : 'any')}</dd>
          <dt>Workspace</dt>
          <dd className="mono">{me.workspaceId}</dd>
        </dl>
      </section>
      <section className="card" aria-labelledby="shortcuts">
        <h2 id="shortcuts">Go to</h2>
        <ul className="shortcuts">
          {me.namespace === null ? (
            <li>
              <Link href={href('namespaces')}>Namespaces</Link> — sizes and last activity
            </li>
          ) : null}
          {canRuntime(me) ? (
            <>
              <li>
                <Link href={href('files', { ns: namespace })}>Files</Link> — browse, preview, upload, download
              </li>
              <li>
                <Link href={href('exec', { ns: namespace })}>Terminal</Link> — run shell commands in a namespace
              </li>
              <li>
                <Link href={href('snapshots', { ns: namespace })}>Snapshots</Link> — take, restore, delete
              </li>
            </>
          ) : null}
          <li>
            <Link href={href('events')}>Events</Link> — the live activity feed
          </li>
          {isAdmin(me) ? (
            <>
              <li>
                <Link href={href('keys')}>API keys</Link> — create and revoke
              </li>
              <li>
                <Link href={href('webhooks')}>Webhooks</Link> — endpoints, tests and delivery logs
              </li>
            </>
          ) : null}
        </ul>
      </section>
      <section className="card" aria-labelledby="recent">
        <h2 id="recent">Recent activity</h2>
        <ErrorMessage error={recent.error} />
        {recent.data && recent.data.length === 0 ? <p className="muted">No events yet.</p> : null}
        {recent.data && recent.data.length > 0 ? (
          <ul className="plain-list">
            {recent.data.map((e) => (
              <li key={e.id}>
                <Stamp iso={e.createdAt} /> <span className="badge">{e.type}</span>{' '}
                <span className="mono muted">{e.namespace ?? ''}</span>
              </li>
            ))}
          </ul>
        ) : null}
      </section>
    </>
  );
}
