/**
 * Optional subsystems register their routes, workers and hooks here, so
 * context.ts stays about the core. Each entry is one line.
 */
import type { AppContext } from './context.js';

export async function registerSubsystems(ctx: AppContext): Promise<void> {
  void ctx;
}
