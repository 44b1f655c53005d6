/**
 * A restore announces its phases on the diagnostics channel
 * `trove:snapshot-restore` (node:diagnostics_channel), as `{ phase, n? }`:
 * mid-extract (n = entries extracted so far), before-swap, mid-swap (between
 * the two renames), after-swap (committed), mid-cleanup (n = top-level entries
 * of the previous tree deleted). Nothing is published while nobody subscribes.
 * A tracer can time the phases; the kill -9 tests subscribe and SIGKILL the
 * process at a chosen phase, to check that recovery leaves the old tree or the
 * new one, never a mix.
 */
import { channel } from 'node:diagnostics_channel';

export const RESTORE_CHANNEL = 'trove:snapshot-restore';

export interface RestorePhase {
  phase: 'mid-extract' | 'before-swap' | 'mid-swap' | 'after-swap' | 'mid-cleanup';
  n?: number;
}

const restoreChannel = channel(RESTORE_CHANNEL);

export function restorePhase(phase: RestorePhase['phase'], n?: number): void {
  if (restoreChannel.hasSubscribers) restoreChannel.publish(n === undefined ? { phase } : { phase, n });
}
