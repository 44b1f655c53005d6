import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { Identity } from 'trove-sdk';
import { SessionContext, canRuntime, isAdmin, type Session } from './context';
import { describeError } from './lib/errors';
import { createClients } from './lib/trove';
import { clearSession, loadKey, loadNamespace, saveKey, saveNamespace } from './lib/session';
import { Link, href, navigate, useRoute } from './lib/router';
import { SignIn } from './pages/sign-in';
import { Overview } from './pages/overview';
import { NamespacesPage } from './pages/namespaces';
import { FilesPage } from './pages/files/files-page';
import { ExecPage } from './pages/exec';
import { SnapshotsPage } from './pages/snapshots';
import { EventsPage } from './pages/events';
import { KeysPage } from './pages/keys';
import { WebhooksPage } from './pages/webhooks';

interface NavItem {
  page: string;
  label: string;
  /** Runtime pages carry the namespace in their URL. */
  runtime?: boolean;
  show: (me: Identity) => boolean;
}

const NAV: NavItem[] = [
  { page: '', label: 'Overview', show: () => true },
  { page: 'namespaces', label: 'Namespaces', show: (me) => me.namespace === null },
  { page: 'files', label: 'Files', runtime: true, show: canRuntime },
  { page: 'exec', label: 'Terminal', runtime: true, show: canRuntime },
  { page: 'snapshots', label: 'Snapshots', runtime: true, show: canRuntime },
  { page: 'events', label: 'Events', show: () => true },
  { page: 'keys', label: 'API keys', show: isAdmin },
  { page: 'webhooks', label: 'Webhooks', show: isAdmin },
];

type Auth =
  { state: 'checking' } | { state: 'signed-out'; notice?: string } | { state: 'signed-in'; key: string; me: Identity };

export function App() {
  const [auth, setAuth] = useState<Auth>(() => (loadKey() ? { state: 'checking' } : { state: 'signed-out' }));

  const signOut = useCallback((notice?: string) => {
    clearSession();
    setAuth({ state: 'signed-out', notice });
  }, []);

  // A key remembered in this tab is re-checked on load: it may have been revoked meanwhile.
  useEffect(() => {
    const key = loadKey();
    if (!key) return;
    const ctrl = new AbortController();
    createClients({ apiKey: key })
      .trove.me({ signal: ctrl.signal })
      .then(
        (me) => setAuth({ state: 'signed-in', key, me }),
        (err: unknown) => {
          if (ctrl.signal.aborted) return;
          clearSession();
          setAuth({ state: 'signed-out', notice: `Signed out: ${describeError(err)}` });
        },
      );
    return () => ctrl.abort();
  }, []);

  if (auth.state === 'checking') {
    return (
      <main className="signin" id="main">
        <p role="status">Checking your key…</p>
      </main>
    );
  }
  if (auth.state === 'signed-out') {
    return (
      <SignIn
        notice={auth.notice}
        onSignedIn={(key, me) => {
          saveKey(key);
          setAuth({ state: 'signed-in', key, me });
        }}
      />
    );
  }
  return <Shell key={auth.key} apiKey={auth.key} me={auth.me} signOut={signOut} />;
}

function Shell({ apiKey, me, signOut }: { apiKey: string; me: Identity; signOut: (notice?: string) => void }) {
  const route = useRoute();
  const clients = useMemo(
    () =>
      createClients({
        apiKey,
        workspaceId: me.workspaceId,
        onUnauthorized: (detail) => signOut(`Signed out: ${detail}. Sign in with a valid key.`),
      }),
    [apiKey, me.workspaceId, signOut],
  );
  const locked = me.scope === 'workspace' && me.namespace !== null;
  const urlNs = route.params.get('ns');
  const namespace = locked ? me.namespace : urlNs || loadNamespace();

  useEffect(() => {
    if (namespace && !locked) saveNamespace(namespace);
  }, [namespace, locked]);

  const setNamespace = useCallback((ns: string) => {
    saveNamespace(ns);
    const params = new URLSearchParams(window.location.search);
    params.set('ns', ns);
    params.delete('path');
    navigate(`${window.location.pathname}?${params.toString()}`);
  }, []);

  const session: Session = { ...clients, me, namespace, namespaceLocked: locked, setNamespace, signOut };
  const items = NAV.filter((n) => n.show(me));
  const active = items.find((n) => n.page === route.page);

  // Move focus to the page heading after in-app navigation so screen readers announce the change.
  const mainRef = useRef<HTMLElement>(null);
  const first = useRef(true);
  useEffect(() => {
    document.title = active ? `${active.label} · Trove` : 'Trove';
    if (first.current) {
      first.current = false;
      return;
    }
    mainRef.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [route.page, active]);

  let content;
  if (!active) content = <NotFound />;
  else if (route.page === '') content = <Overview />;
  else if (route.page === 'namespaces') content = <NamespacesPage />;
  else if (route.page === 'files') content = <FilesPage />;
  else if (route.page === 'exec') content = <ExecPage />;
  else if (route.page === 'snapshots') content = <SnapshotsPage />;
  else if (route.page === 'events') content = <EventsPage />;
  else if (route.page === 'keys') content = <KeysPage />;
  else content = <WebhooksPage />;

  return (
    <SessionContext.Provider value={session}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <div className="layout">
        <header className="topbar">
          <Link className="brand" href={href('')}>
            <img src={`${import.meta.env.BASE_URL}favicon.svg`} alt="" width="24" height="24" />
            <span>Trove</span>
          </Link>
          <div className="identity">
            <span className="key-name" title={me.keyId}>
              {me.keyName}
            </span>
            <span className={`badge scope-${me.scope}`}>
              {me.scope === 'admin' ? 'admin' : me.namespace ? `namespace ${me.namespace}` : 'workspace'}
            </span>
            <span className="muted mono ws-id" title="Workspace id">
              {me.workspaceId}
            </span>
            <button type="button" onClick={() => signOut('You signed out.')}>
              Sign out
            </button>
          </div>
        </header>
        <nav className="sidenav" aria-label="Main">
          <ul>
            {items.map((n) => (
              <li key={n.page}>
                <Link
                  href={href(n.page, n.runtime && !locked ? { ns: namespace } : undefined)}
                  aria-current={n.page === route.page ? 'page' : undefined}
                >
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main" ref={mainRef} className="content" tabIndex={-1}>
          {content}
        </main>
      </div>
    </SessionContext.Provider>
  );
}

function NotFound() {
  return (
    <>
      <h1 tabIndex={-1}>Not here</h1>
      <p>
        This page does not exist or is not available with your key. <Link href={href('')}>Go to the overview</Link>.
      </p>
    </>
  );
}
