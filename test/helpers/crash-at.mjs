/**
 * Preload for the kill -9 tests (`node --import <this file> …`): with
 * TROVE_TEST_CRASH_AT=<phase> (or <phase>:<n> for the n-th hit) the process
 * SIGKILLs itself when a snapshot restore announces that phase on its
 * diagnostics channel (packages/server/src/snapshots/restore-phases.ts).
 * Unset or empty, it does nothing. The server itself never reads the variable.
 */
import { subscribe } from 'node:diagnostics_channel';

const spec = process.env.TROVE_TEST_CRASH_AT ?? '';
if (spec !== '') {
  const [phase, n] = spec.split(':');
  subscribe('trove:snapshot-restore', (message) => {
    const m = /** @type {{ phase: string, n?: number }} */ (message);
    if (m.phase !== phase) return;
    if (n !== undefined && m.n !== Number(n)) return;
    process.kill(process.pid, 'SIGKILL');
  });
}
