import { useId, useState, type FormEvent } from 'react';
import type { ApiKey, CreatedApiKey } from 'trove-sdk';
import { ConfirmDialog } from '../components/confirm-dialog';
import { ErrorMessage } from '../components/error-message';
import { FormCard } from '../components/form-card';
import { PageHead } from '../components/page-head';
import { SecretOnce } from '../components/secret-once';
import { Stamp } from '../components/stamp';
import { useSession } from '../context';
import { namespaceProblem } from '../lib/paths';
import { useAction } from '../lib/use-action';
import { useLoad } from '../lib/use-load';

export function KeysPage() {
  const { admin, me, signOut } = useSession();
  const list = useLoad((signal) => admin.keys.list({ signal }), [admin]);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [status, setStatus] = useState('');
  const keys = list.data ?? [];

  return (
    <>
      <PageHead title="API keys" refresh={list} />
      <CreateKeyForm
        onCreated={(k) => {
          setCreated(k);
          setStatus('');
          list.setData((d) => [...(d ?? []), k]);
        }}
      />
      {created ? (
        <SecretOnce label={`API key “${created.name}”`} secret={created.apiKey} onDone={() => setCreated(null)} />
      ) : null}
      <p role="status" className="status-line">
        {status}
      </p>
      <ErrorMessage error={list.error} />
      {list.loading && !list.data ? <p role="status">Loading keys…</p> : null}
      {keys.length > 0 ? (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Active API keys</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Prefix</th>
                <th scope="col">Scope</th>
                <th scope="col">Namespace</th>
                <th scope="col">Created</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.keyId} data-key-id={k.keyId}>
                  <th scope="row">
                    {k.name}
                    {k.keyId === me.keyId ? <span className="badge">this key</span> : null}
                  </th>
                  <td className="mono">{k.prefix}…</td>
                  <td>
                    <span className={`badge scope-${k.scope}`}>{k.scope}</span>
                  </td>
                  <td className="mono">{k.namespace ?? (k.scope === 'admin' ? '—' : 'any')}</td>
                  <td>
                    <Stamp iso={k.createdAt} />
                  </td>
                  <td className="actions">
                    <button
                      type="button"
                      className="danger"
                      onClick={() => setRevoking(k)}
                      aria-label={`Revoke ${k.name}`}
                    >
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {revoking ? (
        <ConfirmDialog
          title="Revoke this key?"
          confirmLabel="Revoke key"
          danger
          onConfirm={async () => {
            await admin.keys.revoke(revoking.keyId);
            if (revoking.keyId === me.keyId) return signOut('You revoked the key you were signed in with.');
            setStatus(`Revoked ${revoking.name}.`);
            list.setData((d) => (d ?? []).filter((k) => k.keyId !== revoking.keyId));
          }}
          onClose={() => setRevoking(null)}
        >
          <p>
            <strong>{revoking.name}</strong> (<span className="mono">{revoking.prefix}…</span>) stops working
            immediately: every client using it gets “Invalid API key”.
          </p>
          {revoking.keyId === me.keyId ? (
            <p className="warning">This is the key you are signed in with. You will be signed out.</p>
          ) : null}
        </ConfirmDialog>
      ) : null}
    </>
  );
}

function CreateKeyForm({ onCreated }: { onCreated: (key: CreatedApiKey) => void }) {
  const { admin: adminClient } = useSession();
  const [name, setName] = useState('');
  const [namespace, setNamespace] = useState('');
  const [admin, setAdmin] = useState(false);
  const { busy, error, setError, run } = useAction();
  const id = useId();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const ns = namespace.trim();
    if (!name.trim()) return setError(new Error('Give the key a name.'));
    if (ns && !admin) {
      const p = namespaceProblem(ns);
      if (p) return setError(new Error(`Namespace: ${p}`));
    }
    await run(async () => {
      const key = await adminClient.keys.create(name.trim(), { namespace: admin ? null : ns || null, admin });
      setName('');
      setNamespace('');
      setAdmin(false);
      onCreated(key);
    });
  };

  return (
    <FormCard title="Create a key" onSubmit={submit}>
      <div className="field-row">
        <div className="field">
          <label htmlFor={`${id}-name`}>Name</label>
          <input
            id={`${id}-name`}
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder="ci-agent"
            required
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-ns`}>Namespace (optional)</label>
          <input
            id={`${id}-ns`}
            className="mono"
            value={admin ? '' : namespace}
            onChange={(e) => setNamespace(e.target.value)}
            disabled={admin}
            placeholder={admin ? 'admin keys are workspace-wide' : 'any namespace'}
            aria-describedby={`${id}-ns-help`}
          />
        </div>
        <label className="checkbox field-check">
          <input type="checkbox" checked={admin} onChange={(e) => setAdmin(e.target.checked)} /> Admin key
        </label>
        <button type="submit" className="primary field-button" disabled={busy}>
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </div>
      <p id={`${id}-ns-help`} className="muted small">
        A namespace locks a workspace key to that namespace. Admin keys manage keys and webhooks but cannot touch files.
      </p>
      <ErrorMessage error={error} />
    </FormCard>
  );
}
