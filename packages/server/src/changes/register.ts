/**
 * Plugs change tracking into the server: the tracker starts (fanotify, or the scan fallback) before the
 * server listens, SandboxRunner tells it about every command, and it stops on shutdown.
 */
import type { AppContext } from '../context.js';
import { ChangeTracker } from './tracker.js';

export function registerChanges(ctx: AppContext): ChangeTracker {
  const tracker = new ChangeTracker(ctx.config.changes, {
    events: ctx.events,
    namespaces: ctx.namespaces,
    dataDir: ctx.config.dataDir,
    log: ctx.logger,
  });
  tracker.start();
  ctx.sandbox.setChangeTracker(tracker);
  ctx.onClose.push(async () => tracker.close());
  return tracker;
}
