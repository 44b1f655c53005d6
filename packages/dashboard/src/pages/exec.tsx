import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { describeError } from '../api/errors';
import type { ExecResult } from '../api/types';
import { ChooseNamespaceHint, NamespaceBar } from '../components/namespace-bar';
import { useSession } from '../context';

export function ExecPage() {
  const { namespace } = useSession();
  return (
    <>
      <h1 tabIndex={-1}>Terminal</h1>
      <NamespaceBar />
      {namespace ? <Terminal key={namespace} namespace={namespace} /> : <ChooseNamespaceHint />}
    </>
  );
}

interface Entry {
  id: number;
  command: string;
  stdin?: string;
  result?: ExecResult;
  error?: string;
}

let seq = 0;

/**
 * A terminal-like log of `POST /v1/exec` runs. Each command is its own `sh -c` in the namespace:
 * only `workspace/` persists, so `cd` does not carry over between lines (as with the CLI).
 */
function Terminal({ namespace }: { namespace: string }) {
  const { api } = useSession();
  const [entries, setEntries] = useState<Entry[]>([]);
  const [command, setCommand] = useState('');
  const [stdin, setStdin] = useState('');
  const [useStdin, setUseStdin] = useState(false);
  const [running, setRunning] = useState(false);
  const [history, setHistory] = useState<string[]>([]);
  const [cursor, setCursor] = useState<number | null>(null);
  const logRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const cmdId = useId();
  const stdinId = useId();

  useEffect(() => {
    const log = logRef.current;
    if (log) log.scrollTop = log.scrollHeight;
  }, [entries]);

  const run = async (e?: FormEvent) => {
    e?.preventDefault();
    const cmd = command.trim();
    if (!cmd || running) return;
    const id = ++seq;
    const input = useStdin ? stdin : undefined;
    setEntries((list) => [...list, { id, command: cmd, stdin: input }]);
    setHistory((h) => (h[h.length - 1] === cmd ? h : [...h, cmd]));
    setCursor(null);
    setCommand('');
    setRunning(true);
    try {
      const result = await api.exec(namespace, cmd, input);
      setEntries((list) => list.map((x) => (x.id === id ? { ...x, result } : x)));
    } catch (err) {
      setEntries((list) => list.map((x) => (x.id === id ? { ...x, error: describeError(err) } : x)));
    } finally {
      setRunning(false);
      inputRef.current?.focus();
    }
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
      <div className="terminal" ref={logRef} role="log" aria-live="polite" aria-label="Command output" data-testid="terminal-log">
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
            {!x.result && !x.error ? <div className="term-meta">running…</div> : null}
            {x.result ? (
              <>
                {x.result.stdout ? (
                  <pre className="term-stdout" aria-label="stdout">
                    {x.result.stdout}
                  </pre>
                ) : null}
                {x.result.stderr ? (
                  <pre className="term-stderr" aria-label="stderr">
                    {x.result.stderr}
                  </pre>
                ) : null}
                <div className={`term-meta ${x.result.exit_code === 0 ? 'ok' : 'bad'}`} data-testid="exec-status">
                  exit {x.result.exit_code} · {x.result.duration_ms} ms
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
        <button type="submit" className="primary" disabled={running || !command.trim()}>
          {running ? 'Running…' : 'Run'}
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
