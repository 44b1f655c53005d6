import { useEffect, useState } from 'react';
import type { Delivery } from '../api/types';
import { describeError } from '../api/errors';
import { ErrorMessage } from '../components/error-message';
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
      <div className="page-head">
        <h3>Delivery log</h3>
        <button type="button" onClick={reload} disabled={log.loading}>
          Refresh log
        </button>
      </div>
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
                <tr key={d.delivery_id}>
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
                      onClick={() => resend(d)}
                      disabled={resending === d.delivery_id}
                      aria-label={`Re-send ${d.event_type} ${d.event_id}`}
                    >
                      {resending === d.delivery_id ? 'Sending…' : 'Re-send'}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}
