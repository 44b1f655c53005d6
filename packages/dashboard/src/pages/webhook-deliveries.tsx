import { Fragment, useEffect, useState } from 'react';
import type { Delivery } from '../api/types';
import { describeError } from '../api/errors';
import { ErrorMessage } from '../components/error-message';
import { PageHead } from '../components/page-head';
import { Stamp } from '../components/stamp';
import { useSession } from '../context';
import { useLoad } from '../lib/use-load';

/** The delivery log of one webhook: attempts, last answer, next retry, and re-send. */
export function DeliveryLog({ webhookId, refreshKey }: { webhookId: string; refreshKey: string }) {
  const { api, me } = useSession();
  const log = useLoad((signal) => api.deliveries(me.workspace_id, webhookId, signal), [api, me.workspace_id, webhookId, refreshKey]);
  const [resending, setResending] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const { reload } = log;

  // While something is pending, refresh now and then so retries show up without clicking.
  const pending = (log.data?.deliveries ?? []).some((d) => d.status === 'pending');
  useEffect(() => {
    if (!pending) return;
    const t = setInterval(reload, 5000);
    return () => clearInterval(t);
  }, [pending, reload]);

  const resend = async (d: Delivery) => {
    setResending(d.delivery_id);
    setError(null);
    try {
      const r = await api.resendDelivery(me.workspace_id, webhookId, d.delivery_id);
      setStatus(r.status ? `Re-sent ${d.event_type}: ${r.status}.` : `Re-sent ${d.event_type}.`);
      reload();
    } catch (err) {
      setError(err);
      setStatus(`Re-send failed: ${describeError(err)}`);
    } finally {
      setResending(null);
    }
  };

  const deliveries = log.data?.deliveries ?? [];
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
                <Fragment key={d.delivery_id}>
                  <tr>
                    <th scope="row">
                      <span className="badge">{d.event_type}</span>
                      <div className="mono small muted">{d.event_id}</div>
                    </th>
                    <td>
                      <span className={`badge ${d.status === 'delivered' ? 'ok' : d.status === 'failed' ? 'bad' : 'warn'}`}>
                        {d.status}
                      </span>
                    </td>
                    <td className="num">{d.attempts}</td>
                    <td>
                      {d.last_status_code ?? ''}
                      {d.last_error ? <div className="small bad">{d.last_error}</div> : null}
                      {d.last_status_code === null && !d.last_error ? <span className="muted">—</span> : null}
                    </td>
                    <td>
                      <Stamp iso={d.last_attempt_at} />
                    </td>
                    <td>
                      <Stamp iso={d.next_attempt_at} />
                    </td>
                    <td>
                      <button
                        type="button"
                        aria-expanded={open === d.delivery_id}
                        aria-controls={`attempts-${d.delivery_id}`}
                        aria-label={`Attempts of ${d.event_type} ${d.event_id}`}
                        onClick={() => setOpen(open === d.delivery_id ? null : d.delivery_id)}
                      >
                        Attempts
                      </button>{' '}
                      <button
                        type="button"
                        onClick={() => resend(d)}
                        disabled={resending === d.delivery_id}
                        aria-label={`Re-send ${d.event_type} ${d.event_id}`}
                      >
                        {resending === d.delivery_id ? 'Sending…' : 'Re-send'}
                      </button>
                    </td>
                  </tr>
                  {open === d.delivery_id ? (
                    <tr id={`attempts-${d.delivery_id}`} className="attempts-row">
                      <td colSpan={7}>
                        {/* Keyed by attempts so a new attempt (a retry, a re-send) reloads the history. */}
                        <AttemptHistory key={`${d.attempts}-${d.status}`} webhookId={webhookId} deliveryId={d.delivery_id} />
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
  const { api, me } = useSession();
  const detail = useLoad((signal) => api.delivery(me.workspace_id, webhookId, deliveryId, signal), [api, me.workspace_id, webhookId, deliveryId]);
  if (detail.error) return <ErrorMessage error={detail.error} />;
  if (!detail.data) return <p role="status">Loading attempts…</p>;
  const attempts = detail.data.attempt_history;
  if (attempts.length === 0) return <p className="muted">Not attempted yet.</p>;
  return (
    <ol className="attempts" data-testid="attempt-history" aria-label="Attempts, oldest first">
      {attempts.map((a, i) => (
        <li key={i}>
          <Stamp iso={a.attempted_at} />{' '}
          <span className={`badge ${a.status_code !== null && a.status_code >= 200 && a.status_code < 300 ? 'ok' : 'bad'}`}>
            {a.status_code ?? 'no answer'}
          </span>{' '}
          <span className="muted">{a.duration_ms} ms</span>
          {a.error ? <div className="small bad">{a.error}</div> : null}
          {a.next_attempt_at ? (
            <div className="small muted">
              next attempt at <Stamp iso={a.next_attempt_at} />
            </div>
          ) : null}
        </li>
      ))}
    </ol>
  );
}
