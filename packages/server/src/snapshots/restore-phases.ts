/**
 * Deterministic crash injection for the kill -9 tests: with
 * TROVE_TEST_CRASH_AT=<phase> (or <phase>:<n> for the n-th hit) the process
 * SIGKILLs itself when a restore reaches that phase. Unset, this is a no-op.
 * Phases: mid-extract (n = entries extracted), before-swap, mid-swap,
 * after-swap, mid-cleanup.
 */
const spec = process.env.TROVE_TEST_CRASH_AT ?? '';
const [phaseWanted, nWanted] = spec.split(':');

export function crashPoint(phase: string, n?: number): void {
  if (spec === '' || phase !== phaseWanted) return;
  if (nWanted !== undefined && n !== Number(nWanted)) return;
  process.kill(process.pid, 'SIGKILL');
}
