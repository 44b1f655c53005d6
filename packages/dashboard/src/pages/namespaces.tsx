import { useState } from 'react';
import type { Namespace } from 'trove-sdk';
import { ConfirmDialog } from '../components/confirm-dialog';
import { useSession, canRuntime, isAdmin } from '../context';
import { Link, href, navigate } from '../lib/router';
import { useLoad } from '../lib/use-load';
import { formatBytes } from '../lib/bytes';
import { ErrorMessage } from '../components/error-message';
import { PageHead } from '../components/page-head';
import { NamespaceBar } from '../components/namespace-bar';
import { Stamp } from '../components/stamp';

export function NamespacesPage() {
  const { trove, admin: adminClient, me } = useSession();
  const list = useLoad((signal) => trove.namespaces.list({ signal }), [trove]);
  const runtime = canRuntime(me);
  const admin = isAdmin(me);
  const [deleting, setDeleting] = useState<Namespace | null>(null);
  const [status, setStatus] = useState('');
  const namespaces = [...(list.data ?? [])].sort((a, b) => a.name.localeCompare(b.name));

  return (
    <>
      <PageHead title="Namespaces" refresh={list} />
      {runtime ? <NamespaceBar openLabel="Open files" onOpen={(ns) => navigate(href('files', { ns }))} /> : null}
      <p role="status" className="status-line">
        {status}
      </p>
      <ErrorMessage error={list.error} />
      {list.loading && !list.data ? <p role="status">Loading namespaces…</p> : null}
      {list.data && namespaces.length === 0 ? (
        <p className="muted">
          No namespaces yet. A namespace is created by its first use{runtime ? ': open one above.' : '.'}
        </p>
      ) : null}
      {namespaces.length > 0 ? (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Namespaces of the workspace</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col" className="num">
                  Size
                </th>
                <th scope="col" className="num">
                  Files
                </th>
                <th scope="col">Last activity</th>
                <th scope="col">Created</th>
                {runtime ? <th scope="col">Open</th> : null}
                {admin ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {namespaces.map((n) => (
                <tr key={n.name}>
                  <th scope="row" className="mono">
                    {n.name}
                  </th>
                  <td className="num">{formatBytes(n.sizeBytes)}</td>
                  <td className="num">{n.fileCount ?? '—'}</td>
                  <td>
                    <Stamp iso={n.lastActivityAt} />
                  </td>
                  <td>
                    <Stamp iso={n.createdAt} />
                  </td>
                  {runtime ? (
                    <td className="actions">
                      <Link href={href('files', { ns: n.name })} aria-label={`Files of ${n.name}`}>
                        Files
                      </Link>
                      <Link href={href('exec', { ns: n.name })} aria-label={`Terminal in ${n.name}`}>
                        Terminal
                      </Link>
                      <Link href={href('snapshots', { ns: n.name })} aria-label={`Snapshots of ${n.name}`}>
                        Snapshots
                      </Link>
                    </td>
                  ) : null}
                  {admin ? (
                    <td className="actions">
                      <button
                        type="button"
                        className="danger"
                        onClick={() => setDeleting(n)}
                        aria-label={`Delete namespace ${n.name}`}
                      >
                        Delete
                      </button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {deleting ? (
        <ConfirmDialog
          title="Delete this namespace?"
          confirmLabel="Delete namespace"
          danger
          onConfirm={async () => {
            await adminClient.namespaces.delete(deleting.name);
            setStatus(`Deleted namespace ${deleting.name}.`);
            list.setData((d) => (d ?? []).filter((x) => x.name !== deleting.name));
          }}
          onClose={() => setDeleting(null)}
        >
          <p className="warning">
            Every file in <strong className="mono">{deleting.name}</strong> ({formatBytes(deleting.sizeBytes)}) and all
            of its snapshots are deleted. This cannot be undone.
          </p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
