import { useId, useState, type FormEvent } from 'react';
import type { CreatedWebhook, Webhook, WebhookTestResult } from 'trove-sdk';
import { describeError } from '../lib/errors';
import { EVENT_TYPES } from '../lib/event-types';
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
import { DeliveryLog } from './webhook-deliveries';

export function WebhooksPage() {
  const { admin } = useSession();
  const list = useLoad((signal) => admin.webhooks.list({ signal }), [admin]);
  const [created, setCreated] = useState<CreatedWebhook | null>(null);
  const [deleting, setDeleting] = useState<Webhook | null>(null);
  const [logFor, setLogFor] = useState<string | null>(null);
  const [tests, setTests] = useState<Record<string, { busy: boolean; result?: WebhookTestResult; error?: unknown }>>(
    {},
  );
  const [rowError, setRowError] = useState<unknown>(null);
  const [status, setStatus] = useState('');
  const hooks = list.data ?? [];

  const test = async (w: Webhook) => {
    setTests((t) => ({ ...t, [w.webhookId]: { busy: true } }));
    try {
      const result = await admin.webhooks.test(w.webhookId);
      setTests((t) => ({ ...t, [w.webhookId]: { busy: false, result } }));
      list.reload();
    } catch (error) {
      setTests((t) => ({ ...t, [w.webhookId]: { busy: false, error } }));
    }
  };

  // Optimistic: the checkbox flips at once and flips back if the server refuses.
  const setEnabled = async (w: Webhook, enabled: boolean) => {
    setRowError(null);
    const apply = (value: boolean) =>
      list.setData((d) => (d ?? []).map((x) => (x.webhookId === w.webhookId ? { ...x, enabled: value } : x)));
    apply(enabled);
    try {
      const updated = await admin.webhooks.update(w.webhookId, { enabled });
      // The server's view carries the new disabledReason and failure streak.
      list.setData((d) => (d ?? []).map((x) => (x.webhookId === w.webhookId ? { ...x, ...updated } : x)));
      setStatus(`${enabled ? 'Enabled' : 'Disabled'} ${w.url}.`);
    } catch (err) {
      apply(!enabled);
      setRowError(err);
    }
  };

  return (
    <>
      <PageHead title="Webhooks" refresh={list} />
      <CreateWebhookForm
        onCreated={(w) => {
          setCreated(w);
          list.reload();
        }}
      />
      {created ? (
        <SecretOnce
          label={`Signing secret for ${created.url}`}
          secret={created.signingSecret}
          onDone={() => setCreated(null)}
        />
      ) : null}
      <p role="status" className="status-line">
        {status}
      </p>
      <ErrorMessage error={list.error} />
      <ErrorMessage error={rowError} />
      {list.loading && !list.data ? <p role="status">Loading webhooks…</p> : null}
      {list.data && hooks.length === 0 ? <p className="muted">No webhooks yet.</p> : null}
      <ul className="webhook-list">
        {hooks.map((w) => {
          const t = tests[w.webhookId];
          return (
            <li key={w.webhookId} className="card webhook" data-webhook-id={w.webhookId}>
              <div className="webhook-head">
                <h2 className="mono webhook-url">{w.url}</h2>
                <LastDelivery w={w} />
              </div>
              {w.description ? <p>{w.description}</p> : null}
              {!w.enabled && w.disabledReason ? (
                <p className="warning" data-testid="disabled-reason">
                  {w.disabledReason.replace(/; re-enable with PATCH \{"enabled": true\}$/, '')}. Tick Enabled to
                  re-enable it: its pending deliveries then go out.
                </p>
              ) : null}
              <dl className="facts compact">
                <dt>Events</dt>
                <dd className="mono">{w.events.join(', ')}</dd>
                <dt>Namespace</dt>
                <dd className="mono">{w.namespace ?? 'all'}</dd>
                <dt>Created</dt>
                <dd>
                  <Stamp iso={w.createdAt} />
                </dd>
                <dt>Id</dt>
                <dd className="mono">{w.webhookId}</dd>
              </dl>
              <div className="actions">
                <label className="checkbox">
                  <input type="checkbox" checked={w.enabled} onChange={(e) => setEnabled(w, e.target.checked)} />{' '}
                  Enabled
                </label>
                <button type="button" onClick={() => test(w)} disabled={t?.busy}>
                  {t?.busy ? 'Sending test…' : 'Send test'}
                </button>
                <button
                  type="button"
                  aria-expanded={logFor === w.webhookId}
                  aria-controls={`log-${w.webhookId}`}
                  onClick={() => setLogFor(logFor === w.webhookId ? null : w.webhookId)}
                >
                  {logFor === w.webhookId ? 'Hide deliveries' : 'Deliveries'}
                </button>
                <button
                  type="button"
                  className="danger"
                  onClick={() => setDeleting(w)}
                  aria-label={`Delete webhook ${w.url}`}
                >
                  Delete
                </button>
              </div>
              <div role="status" className="test-result" data-testid="test-result">
                {t?.result ? (
                  t.result.ok ? (
                    <span className="ok">
                      Test delivered: receiver answered {t.result.status} (event {t.result.eventId}).
                    </span>
                  ) : (
                    <span className="bad">
                      Test failed{t.result.status ? `: receiver answered ${t.result.status}` : ''}
                      {t.result.error ? ` — ${t.result.error}` : ''}.
                    </span>
                  )
                ) : null}
                {t?.error ? <span className="bad">Test could not be sent: {describeError(t.error)}</span> : null}
              </div>
              {logFor === w.webhookId ? (
                <div id={`log-${w.webhookId}`}>
                  <DeliveryLog webhookId={w.webhookId} refreshKey={t?.result?.eventId ?? ''} />
                </div>
              ) : null}
            </li>
          );
        })}
      </ul>
      {deleting ? (
        <ConfirmDialog
          title="Delete this webhook?"
          confirmLabel="Delete webhook"
          danger
          onConfirm={async () => {
            await admin.webhooks.delete(deleting.webhookId);
            setStatus(`Deleted webhook ${deleting.url}.`);
            if (logFor === deleting.webhookId) setLogFor(null);
            list.setData((d) => (d ?? []).filter((x) => x.webhookId !== deleting.webhookId));
          }}
          onClose={() => setDeleting(null)}
        >
          <p>
            <span className="mono">{deleting.url}</span> will receive no more events, and pending retries are dropped.
          </p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}

function LastDelivery({ w }: { w: Webhook }) {
  if (!w.lastDeliveryAt) return <span className="badge">never delivered</span>;
  const code = w.lastDeliveryStatus !== null && w.lastDeliveryStatus !== undefined ? ` ${w.lastDeliveryStatus}` : '';
  return (
    <span className={`badge ${w.lastDeliveryOk ? 'ok' : 'bad'}`} data-testid="last-delivery">
      {w.lastDeliveryOk ? 'last delivery ok' : 'last delivery failed'}
      {code} · <Stamp iso={w.lastDeliveryAt} />
    </span>
  );
}

function CreateWebhookForm({ onCreated }: { onCreated: (w: CreatedWebhook) => void }) {
  const { admin } = useSession();
  const [url, setUrl] = useState('');
  const [all, setAll] = useState(true);
  const [types, setTypes] = useState<string[]>([]);
  const [namespace, setNamespace] = useState('');
  const [description, setDescription] = useState('');
  const { busy, error, setError, run } = useAction();
  const id = useId();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const u = url.trim();
    try {
      const parsed = new URL(u);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error();
    } catch {
      return setError(new Error('Enter an http:// or https:// URL.'));
    }
    if (!all && types.length === 0) return setError(new Error('Choose at least one event type, or all events.'));
    const ns = namespace.trim();
    if (ns) {
      const p = namespaceProblem(ns);
      if (p) return setError(new Error(`Namespace: ${p}`));
    }
    await run(async () => {
      const w = await admin.webhooks.create({
        url: u,
        events: all ? ['*'] : types,
        namespace: ns || null,
        description: description.trim() || null,
      });
      setUrl('');
      setDescription('');
      setNamespace('');
      setTypes([]);
      setAll(true);
      onCreated(w);
    });
  };

  return (
    <FormCard title="Add a webhook" onSubmit={submit}>
      <div className="field-row">
        <div className="field grow">
          <label htmlFor={`${id}-url`}>Endpoint URL</label>
          <input
            id={`${id}-url`}
            type="url"
            className="mono"
            value={url}
            onChange={(e) => setUrl(e.target.value)}
            placeholder="https://example.com/trove-hook"
            required
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-ns`}>Namespace (optional)</label>
          <input
            id={`${id}-ns`}
            className="mono"
            value={namespace}
            onChange={(e) => setNamespace(e.target.value)}
            placeholder="all namespaces"
          />
        </div>
      </div>
      <div className="field">
        <label htmlFor={`${id}-desc`}>Description (optional)</label>
        <input id={`${id}-desc`} value={description} onChange={(e) => setDescription(e.target.value)} />
      </div>
      <fieldset>
        <legend>Events</legend>
        <label className="checkbox">
          <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} />{' '}
          {/* One flex item, so the text and the code wrap as a sentence. */}
          <span>
            All events, including future types (<code>*</code>)
          </span>
        </label>
        {!all ? (
          <div className="chips">
            {EVENT_TYPES.map((t) => (
              <label key={t} className={`chip${types.includes(t) ? ' on' : ''}`}>
                <input
                  type="checkbox"
                  checked={types.includes(t)}
                  onChange={() => setTypes((s) => (s.includes(t) ? s.filter((x) => x !== t) : [...s, t]))}
                />
                {t}
              </label>
            ))}
          </div>
        ) : null}
      </fieldset>
      <ErrorMessage error={error} />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Adding…' : 'Add webhook'}
      </button>
    </FormCard>
  );
}
