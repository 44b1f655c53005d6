/**
 * Entry point of the exec launcher process (see launcher.ts): runs each
 * LaunchSpec the server sends and answers with its outcome.
 */
import { launch, type Launched } from './launch.js';
import type { FromLauncher, ToLauncher } from './launcher.js';

const EXIT_GRACE_MS = 3_000;

process.title = 'trove-exec-launcher';
const running = new Map<number, Launched>();

function reply(m: FromLauncher): void {
  if (process.connected) process.send!(m);
}

process.on('message', (m: ToLauncher) => {
  if (m.t === 'kill') {
    running.get(m.id)?.kill();
    return;
  }
  if (m.t !== 'run') return;
  const { id } = m;
  const run = launch(m.spec);
  running.set(id, run);
  run.done.then(
    (outcome) => reply({ t: 'done', id, outcome }),
    (err: NodeJS.ErrnoException) => reply({ t: 'failed', id, message: err.message, code: err.code }),
  ).finally(() => running.delete(id));
});

// The server is gone (it exited, or was killed): nobody will read these results, and nothing may outlive it.
process.on('disconnect', () => {
  for (const run of running.values()) run.kill();
  const all = [...running.values()].map((r) => r.done.catch(() => {}));
  setTimeout(() => process.exit(0), EXIT_GRACE_MS).unref();
  void Promise.allSettled(all).then(() => process.exit(0));
});

// A terminal's Ctrl-C or a service manager's SIGTERM reaches the whole process group: the server decides
// when the sandboxes stop (graceful shutdown kills them, then closes this process's channel).
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});
