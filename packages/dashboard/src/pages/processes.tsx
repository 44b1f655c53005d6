import { useEffect, useRef, useState } from 'react';
import type { OutputChunk, Process } from 'trove-sdk';
import { ConfirmDialog } from '../components/confirm-dialog';
import { ErrorMessage } from '../components/error-message';
import { PageHead } from '../components/page-head';
import { Stamp } from '../components/stamp';
import { useSession } from '../context';
import { formatBytes } from '../lib/bytes';
import { describeError, isAbort } from '../lib/errors';
import { segments } from '../lib/output';
import { useLoad } from '../lib/use-load';

/** `running`, or how a process ended: `exited 0`, `killed 143 (SIGTERM)`, `timeout 124`. */
export function processStatus(p: Process): string {
  if (p.state === 'running') return 'running';
  return `${p.exitReason ?? 'exited'} ${p.exitCode ?? '—'}${p.signal ? ` (${p.signal})` : ''}`;
}

/**
 * The namespace's background processes (running and recently ended, newest first): their status,
 * their output followed live, and a way to stop them. `started` is a process the terminal just
 * started: it is added to the list and its output opened. `initial` is a process to open at
 * once (the page was linked to it, from an event it caused).
 */
export function ProcessesPanel({
  namespace,
  started,
  initial,
}: {
  namespace: string;
  started: Process | null;
  initial?: string | null;
}) {
  const { runtime } = useSession();
  const trove = runtime(namespace);
  const list = useLoad((signal) => trove.processes.list({ limit: 100, signal }), [trove]);
  const [open, setOpen] = useState<string | null>(initial ?? null);
  const [stopping, setStopping] = useState<Process | null>(null);
  const [status, setStatus] = useState('');

  // Replaces the process's row, or adds it on top (a process just started is the newest).
  const upsert = (p: Process) =>
    list.setData((d) => {
      const all = d ?? [];
      const known = all.some((x) => x.processId === p.processId);
      return known ? all.map((x) => (x.processId === p.processId ? p : x)) : [p, ...all];
    });

  useEffect(() => {
    if (!started) return;
    upsert(started);
    setOpen(started.processId);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- runs once per newly started process; upsert is remade every render
  }, [started]);

  const processes = list.data ?? [];
  const shown = processes.find((p) => p.processId === open) ?? null;

  return (
    <section className="processes" aria-label="Background processes">
      <PageHead title="Background processes" level={2} refresh={list} />
      <p className="muted">
        Started with “Run in background” (or <code>trove run --background</code>): they keep running when you leave,
        with no exec time limit. Output is kept by the server and can be followed from the start at any time.
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
                <tr key={p.processId} data-testid={`process-${p.processId}`}>
                  <th scope="row" className="mono process-command" title={p.command}>
                    {p.command}
                  </th>
                  <td className="mono">{p.processId}</td>
                  <td
                    className={p.state === 'running' ? 'ok' : p.exitCode === 0 ? '' : 'bad'}
                    data-testid="process-status"
                  >
                    {processStatus(p)}
                  </td>
                  <td>
                    <Stamp iso={p.startedAt} />
                  </td>
                  <td className="num">{formatBytes(p.stdoutBytes + p.stderrBytes)}</td>
                  <td className="actions">
                    <button
                      type="button"
                      aria-pressed={open === p.processId}
                      onClick={() => setOpen(open === p.processId ? null : p.processId)}
                      aria-label={`Output of ${p.processId}`}
                    >
                      Output
                    </button>
                    {p.state === 'running' ? (
                      <button
                        type="button"
                        className="danger"
                        onClick={() => setStopping(p)}
                        aria-label={`Stop ${p.processId}`}
                      >
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
      {initial && open === initial && list.data && !shown ? (
        <p className="notice" role="status">
          Process <span className="mono">{initial}</span> is not among this namespace's recent processes.
        </p>
      ) : null}
      {shown ? <ProcessOutput key={shown.processId} namespace={namespace} process={shown} onExit={upsert} /> : null}
      {stopping ? (
        <ConfirmDialog
          title="Stop this process?"
          confirmLabel="Stop (SIGTERM)"
          danger
          onConfirm={async () => {
            const r = await trove.processes.signal(stopping.processId, 'SIGTERM');
            setStatus(
              r.delivered ? `Sent SIGTERM to ${stopping.processId}.` : `${stopping.processId} had already ended.`,
            );
            setOpen(stopping.processId);
          }}
          onClose={() => setStopping(null)}
        >
          <p>
            <span className="mono">{stopping.processId}</span> and everything it started get SIGTERM; most programs then
            end.
          </p>
        </ConfirmDialog>
      ) : null}
    </section>
  );
}

/** A process's output from its first retained byte, followed live until it ends. */
function ProcessOutput({
  namespace,
  process,
  onExit,
}: {
  namespace: string;
  process: Process;
  onExit: (p: Process) => void;
}) {
  const { runtime } = useSession();
  const trove = runtime(namespace);
  const [chunks, setChunks] = useState<OutputChunk[]>([]);
  const [ended, setEnded] = useState<Process | null>(process.state === 'exited' ? process : null);
  const [error, setError] = useState<unknown>(null);
  const logRef = useRef<HTMLDivElement>(null);
  const onExitRef = useRef(onExit);
  onExitRef.current = onExit;

  useEffect(() => {
    const ctrl = new AbortController();
    // From the first retained byte; a dropped connection is resumed by the SDK (Last-Event-ID).
    const follow = async () => {
      for await (const event of trove.processes.stream(process.processId, { signal: ctrl.signal })) {
        if (event.type === 'exit') {
          setEnded(event.process);
          onExitRef.current(event.process);
        } else setChunks((list) => [...list, event]);
      }
    };
    follow().catch((err: unknown) => {
      if (!ctrl.signal.aborted && !isAbort(err)) setError(err);
    });
    return () => ctrl.abort();
  }, [trove, process.processId]);

  useEffect(() => {
    const log = logRef.current;
    if (log) log.scrollTop = log.scrollHeight;
  }, [chunks]);

  const first = chunks[0];
  return (
    <div className="process-output">
      <h3>
        Output of <span className="mono">{process.processId}</span>
      </h3>
      <div
        className="terminal"
        ref={logRef}
        role="log"
        aria-live="polite"
        aria-label={`Output of ${process.processId}`}
        data-testid="process-log"
      >
        {first && first.offset > 0 ? (
          <div className="term-meta">[the first {first.offset} bytes are no longer kept]</div>
        ) : null}
        {segments(chunks).map((seg, i) => (
          <pre key={i} className={seg.type === 'stdout' ? 'term-stdout' : 'term-stderr'} aria-label={seg.type}>
            {seg.text}
          </pre>
        ))}
        {ended ? (
          <div className={`term-meta ${ended.exitCode === 0 ? 'ok' : 'bad'}`} data-testid="process-ended">
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
