import { useEffect, useRef, useState } from 'react';
import { describeError, isAbort } from '../api/errors';
import { segments } from '../api/output';
import type { OutputChunk, Process } from '../api/types';
import { ConfirmDialog } from '../components/confirm-dialog';
import { ErrorMessage } from '../components/error-message';
import { PageHead } from '../components/page-head';
import { Stamp } from '../components/stamp';
import { useSession } from '../context';
import { formatBytes } from '../lib/bytes';
import { useLoad } from '../lib/use-load';

/** `running`, or how a process ended: `exited 0`, `killed 143 (SIGTERM)`, `timeout 124`. */
export function processStatus(p: Process): string {
  if (p.state === 'running') return 'running';
  return `${p.exit_reason ?? 'exited'} ${p.exit_code ?? '—'}${p.signal ? ` (${p.signal})` : ''}`;
}

/**
 * The namespace's background processes (running and recently ended, newest first): their status,
 * their output followed live, and a way to stop them. `started` is a process the terminal just
 * started: it is added to the list and its output opened.
 */
export function ProcessesPanel({ namespace, started }: { namespace: string; started: Process | null }) {
  const { api } = useSession();
  const list = useLoad((signal) => api.processes(namespace, signal), [api, namespace]);
  const [open, setOpen] = useState<string | null>(null);
  const [stopping, setStopping] = useState<Process | null>(null);
  const [status, setStatus] = useState('');

  // Replaces the process's row, or adds it on top (a process just started is the newest).
  const upsert = (p: Process) =>
    list.setData((d) => {
      const all = d?.processes ?? [];
      const known = all.some((x) => x.process_id === p.process_id);
      return { processes: known ? all.map((x) => (x.process_id === p.process_id ? p : x)) : [p, ...all] };
    });

  useEffect(() => {
    if (!started) return;
    upsert(started);
    setOpen(started.process_id);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [started]);

  const processes = list.data?.processes ?? [];
  const shown = processes.find((p) => p.process_id === open) ?? null;

  return (
    <section className="processes" aria-label="Background processes">
      <PageHead title="Background processes" level={2} refresh={list} />
      <p className="muted">
        Started with “Run in background” (or <code>trove run --background</code>): they keep running when you leave, with no
        exec time limit. Output is kept by the server and can be followed from the start at any time.
      </p>
      <p role="status" className="status-line">
        {status}
      </p>
      <ErrorMessage error={list.error} />
      {list.loading && !list.data ? <p role="status">Loading processes…</p> : null}
      {list.data && processes.length === 0 ? <p className="muted">No background processes in this namespace.</p> : null}
      {processes.length > 0 ? (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Background processes of {namespace}, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Command</th>
                <th scope="col">Id</th>
                <th scope="col">Status</th>
                <th scope="col">Started</th>
                <th scope="col" className="num">
                  Output
                </th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {processes.map((p) => (
                <tr key={p.process_id} data-testid={`process-${p.process_id}`}>
                  <th scope="row" className="mono process-command" title={p.command}>
                    {p.command}
                  </th>
                  <td className="mono">{p.process_id}</td>
                  <td className={p.state === 'running' ? 'ok' : p.exit_code === 0 ? '' : 'bad'} data-testid="process-status">
                    {processStatus(p)}
                  </td>
                  <td>
                    <Stamp iso={p.started_at} />
                  </td>
                  <td className="num">{formatBytes(p.stdout_bytes + p.stderr_bytes)}</td>
                  <td className="actions">
                    <button
                      type="button"
                      aria-pressed={open === p.process_id}
                      onClick={() => setOpen(open === p.process_id ? null : p.process_id)}
                      aria-label={`Output of ${p.process_id}`}
                    >
                      Output
                    </button>
                    {p.state === 'running' ? (
                      <button type="button" className="danger" onClick={() => setStopping(p)} aria-label={`Stop ${p.process_id}`}>
                        Stop
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {shown ? <ProcessOutput key={shown.process_id} namespace={namespace} process={shown} onExit={upsert} /> : null}
      {stopping ? (
        <ConfirmDialog
          title="Stop this process?"
          confirmLabel="Stop (SIGTERM)"
          danger
          onConfirm={async () => {
            const r = await api.signalProcess(namespace, stopping.process_id, 'SIGTERM');
            setStatus(r.delivered ? `Sent SIGTERM to ${stopping.process_id}.` : `${stopping.process_id} had already ended.`);
            setOpen(stopping.process_id);
          }}
          onClose={() => setStopping(null)}
        >
          <p>
            <span className="mono">{stopping.process_id}</span> and everything it started get SIGTERM; most programs then end.
          </p>
        </ConfirmDialog>
      ) : null}
    </section>
  );
}

/** A process's output from its first retained byte, followed live until it ends. */
function ProcessOutput({ namespace, process, onExit }: { namespace: string; process: Process; onExit: (p: Process) => void }) {
  const { api } = useSession();
  const [chunks, setChunks] = useState<OutputChunk[]>([]);
  const [ended, setEnded] = useState<Process | null>(process.state === 'exited' ? process : null);
  const [error, setError] = useState<unknown>(null);
  const logRef = useRef<HTMLDivElement>(null);
  const onExitRef = useRef(onExit);
  onExitRef.current = onExit;

  useEffect(() => {
    const ctrl = new AbortController();
    api
      .followProcess(namespace, process.process_id, ctrl.signal, (event) => {
        if (event.type === 'exit') {
          setEnded(event.process);
          onExitRef.current(event.process);
        } else setChunks((list) => [...list, event]);
      })
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted && !isAbort(err)) setError(err);
      });
    return () => ctrl.abort();
  }, [api, namespace, process.process_id]);

  useEffect(() => {
    const log = logRef.current;
    if (log) log.scrollTop = log.scrollHeight;
  }, [chunks]);

  const first = chunks[0];
  return (
    <div className="process-output">
      <h3>
        Output of <span className="mono">{process.process_id}</span>
      </h3>
      <div className="terminal" ref={logRef} role="log" aria-live="polite" aria-label={`Output of ${process.process_id}`} data-testid="process-log">
        {first && first.offset > 0 ? <div className="term-meta">[the first {first.offset} bytes are no longer kept]</div> : null}
        {segments(chunks).map((seg, i) => (
          <pre key={i} className={seg.type === 'stdout' ? 'term-stdout' : 'term-stderr'} aria-label={seg.type}>
            {seg.text}
          </pre>
        ))}
        {ended ? (
          <div className={`term-meta ${ended.exit_code === 0 ? 'ok' : 'bad'}`} data-testid="process-ended">
            ended: {processStatus(ended)}
          </div>
        ) : error ? null : (
          <div className="term-meta">running… (output appears as it is written)</div>
        )}
        {error ? (
          <div className="term-stderr" role="alert">
            {describeError(error)}
          </div>
        ) : null}
      </div>
    </div>
  );
}
