import { Fragment, useEffect, useState } from 'react';
import type { WebhookDelivery } from 'trove-sdk';
import { describeError } from '../lib/errors';
import { ErrorMessage } from '../components/error-message';
import { PageHead } from '../components/page-head';
import { Stamp } from '../components/stamp';
import { useSession } from '../context';
import { useLoad } from '../lib/use-load';

/** The delivery log of one webhook: attempts, last answer, next retry, and re-send. */
export function DeliveryLog({ webhookId, refreshKey }: { webhookId: string; refreshKey: string }) {
  const { admin } = useSession();
  const log = useLoad((signal) => admin.webhooks.listDeliveries(webhookId, { signal }), [admin, webhookId, refreshKey]);
  const [resending, setResending] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const { reload } = log;

  // While something is pending, refresh now and then so retries show up without clicking.
  const pending = (log.data ?? []).some((d) => d.status === 'pending');
  useEffect(() => {
    if (!pending) return;
    const t = setInterval(reload, 5000);
    return () => clearInterval(t);
  }, [pending, reload]);

  const resend = async (d: WebhookDelivery) => {
    setResending(d.deliveryId);
    setError(null);
    try {
      const r = await admin.webhooks.resendDelivery(webhookId, d.deliveryId);
      setStatus(r.status ? `Re-sent ${d.eventType}: ${r.status}.` : `Re-sent ${d.eventType}.`);
      reload();
    } catch (err) {
      setError(err);
      setStatus(`Re-send failed: ${describeError(err)}`);
    } finally {
      setResending(null);
    }
  };

  const deliveries = log.data ?? [];
  return (
    <section className="deliveries" aria-label="Delivery log">
      <PageHead title="Delivery log" level={3} refresh={log} refreshLabel="Refresh log" />
      <ErrorMessage error={log.error} />
      <ErrorMessage error={error} />
      <p role="status" className="status-line">
        {status}
      </p>
      {log.data && deliveries.length === 0 ? <p className="muted">No deliveries yet.</p> : null}
      {deliveries.length > 0 ? (
        <div className="table-wrap">
          <table data-testid="delivery-log">
            <caption className="visually-hidden">Deliveries, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">
                  Attempts
                </th>
                <th scope="col">Last answer</th>
                <th scope="col">Last attempt</th>
                <th scope="col">Next attempt</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {deliveries.map((d) => (
                <Fragment key={d.deliveryId}>
                  <tr>
                    <th scope="row">
                      <span className="badge">{d.eventType}</span>
                      <div className="mono small muted">{d.eventId}</div>
                    </th>
                    <td>
                      <span
                        className={`badge ${d.status === 'delivered' ? 'ok' : d.status === 'failed' ? 'bad' : 'warn'}`}
                      >
                        {d.status}
                      </span>
                    </td>
                    <td className="num">{d.attempts}</td>
                    <td>
                      {d.lastStatusCode ?? ''}
                      {d.lastError ? <div className="small bad">{d.lastError}</div> : null}
                      {d.lastStatusCode === null && !d.lastError ? <span className="muted">—</span> : null}
                    </td>
                    <td>
                      <Stamp iso={d.lastAttemptAt} />
                    </td>
                    <td>
                      <Stamp iso={d.nextAttemptAt} />
                    </td>
                    <td>
                      <button
                        type="button"
                        aria-expanded={open === d.deliveryId}
                        aria-controls={`attempts-${d.deliveryId}`}
                        aria-label={`Attempts of ${d.eventType} ${d.eventId}`}
                        onClick={() => setOpen(open === d.deliveryId ? null : d.deliveryId)}
                      >
                        Attempts
                      </button>{' '}
                      <button
                        type="button"
                        onClick={() => resend(d)}
                        disabled={resending === d.deliveryId}
                        aria-label={`Re-send ${d.eventType} ${d.eventId}`}
                      >
                        {resending === d.deliveryId ? 'Sending…' : 'Re-send'}
                      </button>
                    </td>
                  </tr>
                  {open === d.deliveryId ? (
                    <tr id={`attempts-${d.deliveryId}`} className="attempts-row">
                      <td colSpan={7}>
                        {/* Keyed by attempts so a new attempt (a retry, a re-send) reloads the history. */}
                        <AttemptHistory
                          key={`${d.attempts}-${d.status}`}
                          webhookId={webhookId}
                          deliveryId={d.deliveryId}
                        />
                      </td>
                    </tr>
                  ) : null}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

/** Every attempt of one delivery, oldest first: when, the answer, how long, and the retry it scheduled. */
function AttemptHistory({ webhookId, deliveryId }: { webhookId: string; deliveryId: string }) {
  const { admin } = useSession();
  const detail = useLoad(
    (signal) => admin.webhooks.retrieveDelivery(webhookId, deliveryId, { signal }),
    [admin, webhookId, deliveryId],
  );
  if (detail.error) return <ErrorMessage error={detail.error} />;
  if (!detail.data) return <p role="status">Loading attempts…</p>;
  const attempts = detail.data.attemptHistory;
  if (attempts.length === 0) return <p className="muted">Not attempted yet.</p>;
  return (
    <ol className="attempts" data-testid="attempt-history" aria-label="Attempts, oldest first">
      {attempts.map((a, i) => (
        <li key={i}>
          <Stamp iso={a.attemptedAt} />{' '}
          <span
            className={`badge ${a.statusCode !== null && a.statusCode >= 200 && a.statusCode < 300 ? 'ok' : 'bad'}`}
          >
            {a.statusCode ?? 'no answer'}
          </span>{' '}
          <span className="muted">{a.durationMs} ms</span>
          {a.error ? <div className="small bad">{a.error}</div> : null}
          {a.nextAttemptAt ? (
            <div className="small muted">
              next attempt at <Stamp iso={a.nextAttemptAt} />
            </div>
          ) : null}
        </li>
      ))}
    </ol>
  );
}
