import { useId, useState, type FormEvent } from 'react';
import type { Snapshot } from 'trove-sdk';
import { ConfirmDialog } from '../components/confirm-dialog';
import { ErrorMessage } from '../components/error-message';
import { PageHead } from '../components/page-head';
import { ChooseNamespaceHint, NamespaceBar } from '../components/namespace-bar';
import { Stamp } from '../components/stamp';
import { useSession } from '../context';
import { formatBytes } from '../lib/bytes';
import { formatFull } from '../lib/time';
import { useAction } from '../lib/use-action';
import { useLoad } from '../lib/use-load';

export function SnapshotsPage() {
  const { namespace } = useSession();
  return (
    <>
      <h1 tabIndex={-1}>Snapshots</h1>
      <NamespaceBar />
      {namespace ? <Snapshots key={namespace} namespace={namespace} /> : <ChooseNamespaceHint />}
    </>
  );
}

function Snapshots({ namespace }: { namespace: string }) {
  const { runtime } = useSession();
  const trove = runtime(namespace);
  const list = useLoad((signal) => trove.snapshots.list({ signal }), [trove]);
  const [label, setLabel] = useState('');
  const creation = useAction();
  const [status, setStatus] = useState('');
  const [restoring, setRestoring] = useState<Snapshot | null>(null);
  const [deleting, setDeleting] = useState<Snapshot | null>(null);
  const labelId = useId();

  const create = async (e: FormEvent) => {
    e.preventDefault();
    await creation.run(async () => {
      const snap = await trove.snapshots.create({ label: label.trim() || null });
      setLabel('');
      setStatus(`Snapshot ${snap.snapshotId} created (${formatBytes(snap.sizeBytes)}).`);
      list.setData((d) => [snap, ...(d ?? []).filter((s) => s.snapshotId !== snap.snapshotId)]);
    });
  };

  const snapshots = list.data ?? [];

  return (
    <>
      <form className="card inline-form" onSubmit={create} aria-label="Take a snapshot">
        <h2>Take a snapshot</h2>
        <div className="field-row">
          <div className="field">
            <label htmlFor={labelId}>Label (optional)</label>
            <input
              id={labelId}
              value={label}
              maxLength={128}
              onChange={(e) => setLabel(e.target.value)}
              placeholder="before-migration"
            />
          </div>
          <button type="submit" className="primary" disabled={creation.busy}>
            {creation.busy ? 'Taking snapshot…' : 'Take snapshot'}
          </button>
        </div>
        <ErrorMessage error={creation.error} />
      </form>
      <p role="status" className="status-line">
        {status}
      </p>
      <PageHead title={`Snapshots of ${namespace}`} level={2} refresh={list} />
      <ErrorMessage error={list.error} />
      {list.loading && !list.data ? <p role="status">Loading snapshots…</p> : null}
      {list.data && snapshots.length === 0 ? <p className="muted">No snapshots yet.</p> : null}
      {snapshots.length > 0 ? (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Snapshots of {namespace}, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Label</th>
                <th scope="col">Id</th>
                <th scope="col" className="num">
                  Size
                </th>
                <th scope="col">Created</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {snapshots.map((s) => (
                <tr key={s.snapshotId}>
                  <th scope="row">{s.label ?? <span className="muted">(no label)</span>}</th>
                  <td className="mono">{s.snapshotId}</td>
                  <td className="num">{formatBytes(s.sizeBytes)}</td>
                  <td>
                    <Stamp iso={s.createdAt} />
                  </td>
                  <td className="actions">
                    <button
                      type="button"
                      onClick={() => setRestoring(s)}
                      aria-label={`Restore ${s.label ?? s.snapshotId}`}
                    >
                      Restore
                    </button>
                    <button
                      type="button"
                      className="danger"
                      onClick={() => setDeleting(s)}
                      aria-label={`Delete ${s.label ?? s.snapshotId}`}
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {restoring ? (
        <ConfirmDialog
          title="Restore this snapshot?"
          confirmLabel="Restore and replace files"
          danger
          onConfirm={async () => {
            const r = await trove.snapshots.restore(restoring.snapshotId);
            setStatus(`Restored ${r.filesRestored} files from ${restoring.label ?? restoring.snapshotId}.`);
          }}
          onClose={() => setRestoring(null)}
        >
          <p className="warning">
            Namespace <strong className="mono">{namespace}</strong> will become <strong>exactly</strong> this snapshot
            from {formatFull(restoring.createdAt)}. Every file written or changed since then is{' '}
            <strong>deleted or overwritten</strong>.
          </p>
          <p>Take a snapshot first if you may want the current files back.</p>
        </ConfirmDialog>
      ) : null}
      {deleting ? (
        <ConfirmDialog
          title="Delete this snapshot?"
          confirmLabel="Delete snapshot"
          danger
          onConfirm={async () => {
            await trove.snapshots.delete(deleting.snapshotId);
            setStatus(`Deleted snapshot ${deleting.label ?? deleting.snapshotId}.`);
            list.setData((d) => (d ?? []).filter((s) => s.snapshotId !== deleting.snapshotId));
          }}
          onClose={() => setDeleting(null)}
        >
          <p>
            Snapshot <strong>{deleting.label ?? deleting.snapshotId}</strong> will be deleted. The namespace's files are
            not touched.
          </p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
