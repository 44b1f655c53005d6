import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import type { ExecExitEvent, OutputChunk, Process } from 'trove-sdk';
import { ChooseNamespaceHint, NamespaceBar } from '../components/namespace-bar';
import { useSession } from '../context';
import { describeError, isAbort } from '../lib/errors';
import { segments } from '../lib/output';
import { useRoute } from '../lib/router';
import { ProcessesPanel } from './processes';

export function ExecPage() {
  const { namespace } = useSession();
  // `?process=proc-…` opens that process's output (the events page links here).
  const process = useRoute().params.get('process');
  return (
    <>
      <h1 tabIndex={-1}>Terminal</h1>
      <NamespaceBar />
      {namespace ? (
        <NamespaceTerminal key={`${namespace} ${process ?? ''}`} namespace={namespace} process={process} />
      ) : (
        <ChooseNamespaceHint />
      )}
    </>
  );
}

/** The terminal, and the namespace's background processes below it (the terminal can start one). */
function NamespaceTerminal({ namespace, process }: { namespace: string; process: string | null }) {
  const [started, setStarted] = useState<Process | null>(null);
  return (
    <>
      <Terminal namespace={namespace} onStarted={setStarted} />
      <ProcessesPanel namespace={namespace} started={started} initial={process} />
    </>
  );
}

interface Entry {
  id: number;
  command: string;
  stdin?: string;
  /** Output as it arrived. */
  chunks: OutputChunk[];
  exit?: ExecExitEvent;
  error?: string;
  /** Started as a background process instead. */
  background?: string;
}

let seq = 0;

/**
 * A terminal-like log of `POST /v1/exec` runs, whose output shows as the command writes it. Each
 * command is its own `sh -c` in the namespace: only `workspace/` persists, so `cd` does not carry
 * over between lines (as with the CLI).
 */
function Terminal({ namespace, onStarted }: { namespace: string; onStarted: (p: Process) => void }) {
  const { runtime } = useSession();
  const trove = runtime(namespace);
  const [entries, setEntries] = useState<Entry[]>([]);
  const [command, setCommand] = useState('');
  const [stdin, setStdin] = useState('');
  const [useStdin, setUseStdin] = useState(false);
  const [running, setRunning] = useState(false);
  const [history, setHistory] = useState<string[]>([]);
  const [cursor, setCursor] = useState<number | null>(null);
  const logRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const runningRef = useRef<AbortController | null>(null);

  // Leaving the page stops reading (and the server ends the command with the connection).
  useEffect(() => () => runningRef.current?.abort(), []);
  const cmdId = useId();
  const stdinId = useId();

  useEffect(() => {
    const log = logRef.current;
    if (log) log.scrollTop = log.scrollHeight;
  }, [entries]);

  const update = (id: number, change: (x: Entry) => Entry) =>
    setEntries((list) => list.map((x) => (x.id === id ? change(x) : x)));

  const begin = () => {
    const cmd = command.trim();
    if (!cmd || running) return null;
    const id = ++seq;
    setHistory((h) => (h[h.length - 1] === cmd ? h : [...h, cmd]));
    setCursor(null);
    setCommand('');
    return { id, cmd };
  };

  const run = async (e?: FormEvent) => {
    e?.preventDefault();
    const started = begin();
    if (!started) return;
    const { id, cmd } = started;
    const input = useStdin ? stdin : undefined;
    setEntries((list) => [...list, { id, command: cmd, stdin: input, chunks: [] }]);
    setRunning(true);
    const ctrl = new AbortController();
    runningRef.current = ctrl;
    try {
      for await (const event of trove.exec.stream(cmd, { stdin: input, signal: ctrl.signal })) {
        if (event.type === 'exit') update(id, (x) => ({ ...x, exit: event }));
        else update(id, (x) => ({ ...x, chunks: [...x.chunks, event] }));
      }
    } catch (err) {
      const error = isAbort(err) ? 'Stopped: the command was ended when its connection closed.' : describeError(err);
      update(id, (x) => ({ ...x, error }));
    } finally {
      runningRef.current = null;
      setRunning(false);
      inputRef.current?.focus();
    }
  };

  /** Starts the command as a background process: it outlives this page and has no exec time limit. */
  const runInBackground = async () => {
    const started = begin();
    if (!started) return;
    const { id, cmd } = started;
    setEntries((list) => [...list, { id, command: cmd, chunks: [] }]);
    try {
      const proc = await trove.processes.start(cmd);
      update(id, (x) => ({ ...x, background: proc.processId }));
      onStarted(proc);
    } catch (err) {
      update(id, (x) => ({ ...x, error: describeError(err) }));
    }
    inputRef.current?.focus();
  };

  // Up/Down walk the command history like a shell.
  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === 'ArrowUp' && history.length) {
      e.preventDefault();
      const next = cursor === null ? history.length - 1 : Math.max(0, cursor - 1);
      setCursor(next);
      setCommand(history[next] ?? '');
    } else if (e.key === 'ArrowDown' && cursor !== null) {
      e.preventDefault();
      const next = cursor + 1;
      if (next >= history.length) {
        setCursor(null);
        setCommand('');
      } else {
        setCursor(next);
        setCommand(history[next] ?? '');
      }
    } else if (e.key === 'l' && e.ctrlKey) {
      e.preventDefault();
      setEntries([]);
    }
  };

  return (
    <section className="terminal-wrap" aria-label={`Terminal in ${namespace}`}>
      <div
        className="terminal"
        ref={logRef}
        role="log"
        aria-live="polite"
        aria-label="Command output"
        data-testid="terminal-log"
      >
        {entries.length === 0 ? (
          <p className="term-hint">
            Commands run with <code>sh -c</code> in a fresh sandbox whose <code>workspace/</code> is namespace{' '}
            {namespace}. Try <code>ls -la workspace/</code>. ↑/↓ recall history, Ctrl+L clears.
          </p>
        ) : null}
        {entries.map((x) => (
          <div key={x.id} className="term-entry">
            <div className="term-cmd">
              <span className="term-prompt" aria-hidden="true">
                {namespace} $
              </span>{' '}
              <span className="visually-hidden">Command: </span>
              {x.command}
            </div>
            {x.stdin !== undefined ? <div className="term-meta">stdin: {x.stdin.length} characters</div> : null}
            {segments(x.chunks).map((seg, i) => (
              <pre key={i} className={seg.type === 'stdout' ? 'term-stdout' : 'term-stderr'} aria-label={seg.type}>
                {seg.text}
              </pre>
            ))}
            {x.background ? (
              <div className="term-meta" data-testid="exec-status">
                started in the background as <span className="mono">{x.background}</span> (see Background processes)
              </div>
            ) : null}
            {!x.exit && !x.error && !x.background ? <div className="term-meta">running…</div> : null}
            {x.exit ? (
              <>
                {x.exit.error ? (
                  <div className="term-stderr" role="alert">
                    {x.exit.error.detail}
                  </div>
                ) : null}
                <div className={`term-meta ${x.exit.exitCode === 0 ? 'ok' : 'bad'}`} data-testid="exec-status">
                  exit {x.exit.exitCode} · {x.exit.durationMs} ms
                  {x.exit.exitReason && x.exit.exitReason !== 'exited' ? ` · ${x.exit.exitReason}` : ''}
                </div>
              </>
            ) : null}
            {x.error ? (
              <div className="term-stderr" role="alert">
                {x.error}
              </div>
            ) : null}
          </div>
        ))}
      </div>
      <form className="term-input" onSubmit={run}>
        <label htmlFor={cmdId} className="term-prompt">
          {namespace} $<span className="visually-hidden"> command</span>
        </label>
        <input
          id={cmdId}
          ref={inputRef}
          className="mono"
          value={command}
          onChange={(e) => setCommand(e.target.value)}
          onKeyDown={onKeyDown}
          autoComplete="off"
          autoCapitalize="off"
          spellCheck={false}
          placeholder="ls -la workspace/"
          autoFocus
        />
        {running ? (
          <button type="button" onClick={() => runningRef.current?.abort()}>
            Stop
          </button>
        ) : (
          <button type="submit" className="primary" disabled={!command.trim()}>
            Run
          </button>
        )}
        <button type="button" onClick={runInBackground} disabled={running || !command.trim()}>
          Run in background
        </button>
        <button type="button" onClick={() => setEntries([])} disabled={entries.length === 0}>
          Clear
        </button>
      </form>
      <div className="stdin-box">
        <label className="checkbox">
          <input type="checkbox" checked={useStdin} onChange={(e) => setUseStdin(e.target.checked)} /> Send stdin
        </label>
        {useStdin ? (
          <>
            <label htmlFor={stdinId} className="visually-hidden">
              Standard input
            </label>
            <textarea
              id={stdinId}
              className="mono"
              rows={4}
              value={stdin}
              onChange={(e) => setStdin(e.target.value)}
              placeholder="Text passed to the command on stdin (UTF-8, up to 1 MiB)"
            />
          </>
        ) : null}
      </div>
    </section>
  );
}
