/**
 * Entry point of the exec launcher process (see launcher.ts): runs each
 * LaunchSpec the server sends and answers with its outcome.
 *
 * Three kinds of launch: a one-shot exec (output collected, sent with the
 * outcome), a live one-shot exec (output also forwarded as it comes, within a
 * window of unacknowledged bytes), and a background process (output written
 * here, straight into its ring files: the server's memory never holds it).
 */
import { mkdirSync } from 'node:fs';
import type { NativeChild } from './native-child.js';
import { FD } from './bwrap.js';
import { launch, prespawn, StdinClosedError, type EnterSpawn, type Launched, type LaunchSink } from './launch.js';
import type { ControlResult, FromLauncher, RingTotals, ToLauncher } from './launcher.js';
import { RingWriter } from './ring-writer.js';

const EXIT_GRACE_MS = 3_000;
/** Live exec: forwarded bytes the server has not acknowledged yet before the command's output is paused. */
const LIVE_WINDOW_BYTES = 512 * 1024;
/** Background process: stdin bytes queued (not yet read by the command) beyond which a write is refused. */
const STDIN_QUEUE_BYTES = 1024 * 1024;
/** Background process: least time between two "new output" messages to the server. */
const PROGRESS_MS = 5;

process.title = 'trove-exec-launcher';

interface Entry {
  run: Launched;
  /** Live exec: acknowledgements release the window. */
  credit?: { unacked: number; waiters: Array<() => void> };
}

const running = new Map<number, Entry>();
/** trove-enter processes started ahead of their command (launch.ts prespawn), by spare id. */
const spares = new Map<number, { child: NativeChild; onErr: (c: Buffer) => void }>();

function prespawnSpare(spare: number, spawn: EnterSpawn): void {
  let child: NativeChild;
  try {
    child = prespawn(spawn);
  } catch (err) {
    reply({ t: 'spare-gone', spare, message: (err as Error).message });
    return;
  }
  // Its output before a command took it is only ever trove-enter's own complaint: kept for the report.
  let said = '';
  const onErr = (c: Buffer) => {
    if (said.length < 2000) said += c.toString('utf8');
  };
  child.stderr?.on('data', onErr);
  spares.set(spare, { child, onErr });
  child.once('exit', () => {
    if (spares.get(spare)?.child !== child) return;
    spares.delete(spare);
    reply({ t: 'spare-gone', spare, message: said.trim() || undefined });
  });
}

/** A live spare for a command (it stops being a spare), or undefined. */
function takeSpare(spare: number | undefined): NativeChild | undefined {
  if (spare === undefined) return undefined;
  const s = spares.get(spare);
  spares.delete(spare);
  if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return undefined;
  s.child.stderr?.off('data', s.onErr);
  // Paused again: launch() attaches its own readers, and nothing from here on may be lost.
  s.child.stderr?.pause();
  return s.child;
}

function reply(m: FromLauncher): void {
  if (process.connected) process.send!(m);
}

function releaseCredit(e: Entry): void {
  const c = e.credit;
  if (!c) return;
  while (c.waiters.length > 0 && c.unacked <= LIVE_WINDOW_BYTES) c.waiters.shift()!();
}

function liveSink(id: number, entry: () => Entry | undefined): LaunchSink {
  return {
    ready: () => reply({ t: 'ready', id }),
    output: (stream, chunk) => {
      const e = entry();
      reply({ t: 'chunk', id, stream, data: new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength) });
      if (!e?.credit) return;
      e.credit.unacked += chunk.length;
      if (e.credit.unacked <= LIVE_WINDOW_BYTES) return;
      return new Promise<void>((resolve) => e.credit!.waiters.push(resolve));
    },
  };
}

function ringSink(
  id: number,
  rings: { stdout: RingWriter; stderr: RingWriter },
  failed: (err: Error) => void,
): LaunchSink {
  const totals = (): RingTotals => ({
    stdoutBytes: rings.stdout.total,
    stderrBytes: rings.stderr.total,
    stdoutDropped: rings.stdout.dropped,
    stderrDropped: rings.stderr.dropped,
  });
  // At most one progress message per PROGRESS_MS (the last one trailing): a command writing a byte at a
  // time must not turn into as many messages and stream wake-ups in the server.
  let last = 0;
  let trailing: NodeJS.Timeout | null = null;
  const progress = () => {
    const now = performance.now();
    if (now - last >= PROGRESS_MS) {
      last = now;
      reply({ t: 'progress', id, totals: totals() });
      return;
    }
    trailing ??= setTimeout(
      () => {
        trailing = null;
        last = performance.now();
        reply({ t: 'progress', id, totals: totals() });
      },
      PROGRESS_MS - (now - last),
    );
  };
  return {
    ready: () => reply({ t: 'ready', id }),
    output: (stream, chunk) => rings[stream].append(chunk).then(progress, (err: Error) => failed(err)),
  };
}

function control(e: Entry | undefined, m: Extract<ToLauncher, { t: 'stdin' | 'signal' }>): ControlResult {
  if (!e) return { ok: false, error: 'gone' };
  const run = e.run;
  if (m.t === 'signal') return { ok: true, delivered: run.signal(m.signal) };
  let written = 0;
  if (m.data && m.data.byteLength > 0) {
    if (!run.stdinOpen) return { ok: false, error: 'closed', stdinOpen: false };
    // Security: a command that never reads its stdin must not make the launcher buffer without bound.
    if (run.stdinQueued + m.data.byteLength > STDIN_QUEUE_BYTES) return { ok: false, error: 'full', stdinOpen: true };
    try {
      run.write(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
      written = m.data.byteLength;
    } catch (err) {
      if (err instanceof StdinClosedError) return { ok: false, error: 'closed', stdinOpen: false };
      throw err;
    }
  } else if (!run.stdinOpen && !m.close) {
    return { ok: false, error: 'closed', stdinOpen: false };
  }
  if (m.close) run.closeStdin();
  return { ok: true, written, stdinOpen: run.stdinOpen };
}

process.on('message', (m: ToLauncher) => {
  switch (m.t) {
    case 'kill':
      running.get(m.id)?.run.kill(m.reason);
      return;
    case 'ack': {
      const e = running.get(m.id);
      if (e?.credit) {
        e.credit.unacked = Math.max(0, e.credit.unacked - m.bytes);
        releaseCredit(e);
      }
      return;
    }
    case 'unforward': {
      const e = running.get(m.id);
      if (!e) return;
      e.run.unforward();
      if (e.credit) {
        e.credit.unacked = 0;
        releaseCredit(e);
      }
      return;
    }
    case 'stdin':
    case 'signal':
      reply({ t: 'reply', id: m.id, req: m.req, result: control(running.get(m.id), m) });
      return;
    case 'prespawn':
      prespawnSpare(m.spare, m.spawn);
      return;
    case 'drop': {
      const child = spares.get(m.spare)?.child;
      // End of its go descriptor: the supervisor exits unused, then trove-enter (reported as spare-gone).
      (child?.stdio[FD.go] as NodeJS.WritableStream | null | undefined)?.end();
      return;
    }
    case 'run':
    case 'start':
      break;
    default:
      return;
  }
  const { id } = m;
  let rings: { stdout: RingWriter; stderr: RingWriter } | null = null;
  let sink: LaunchSink = {};
  let ringError: Error | null = null;
  if (m.t === 'start') {
    try {
      mkdirSync(m.output.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      reply({ t: 'failed', id, message: `cannot create the output directory: ${e.message}`, code: e.code });
      return;
    }
    rings = {
      stdout: new RingWriter(m.output.dir, 'stdout', m.output.capBytes),
      stderr: new RingWriter(m.output.dir, 'stderr', m.output.capBytes),
    };
    // A write that fails (volume full, gone) ends the process: output it cannot keep must not be lost silently.
    sink = ringSink(id, rings, (err) => {
      ringError ??= err;
      running.get(id)?.run.kill('stop');
    });
  } else if (m.live) {
    sink = liveSink(id, () => running.get(id));
  } else if (m.notify) {
    sink = { ready: () => reply({ t: 'ready', id }) };
  }
  sink.sandbox = (info) => reply({ t: 'sandbox', id, info });
  const run = launch(m.spec, sink, takeSpare(m.spare));
  const entry: Entry = { run };
  if (m.t === 'run' && m.live) entry.credit = { unacked: 0, waiters: [] };
  running.set(id, entry);
  run.done
    .then(async (outcome) => {
      if (!rings) return reply({ t: 'done', id, outcome });
      await Promise.all([rings.stdout.close(), rings.stderr.close()]);
      reply({
        t: 'done',
        id,
        outcome,
        ring: {
          stdoutBytes: rings.stdout.total,
          stderrBytes: rings.stderr.total,
          stdoutDropped: rings.stdout.dropped,
          stderrDropped: rings.stderr.dropped,
        },
        ...(ringError ? { outputError: (ringError as Error).message } : {}),
      });
    })
    .catch((err: NodeJS.ErrnoException) => reply({ t: 'failed', id, message: err.message, code: err.code }))
    .finally(() => running.delete(id));
});

// The server is gone (it exited, or was killed): nobody will read these results, and nothing may outlive it.
process.on('disconnect', () => {
  for (const e of running.values()) e.run.kill();
  const all = [...running.values()].map((e) => e.run.done.catch(() => {}));
  setTimeout(() => process.exit(0), EXIT_GRACE_MS).unref();
  void Promise.allSettled(all).then(() => process.exit(0));
});

// A terminal's Ctrl-C or a service manager's SIGTERM reaches the whole process group: the server decides
// when the sandboxes stop (graceful shutdown kills them, then closes this process's channel).
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});
