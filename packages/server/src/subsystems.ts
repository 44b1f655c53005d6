/**
 * Optional subsystems register their routes, workers and hooks here, so
 * context.ts stays about the core. Each entry is one line.
 */
import type { AppContext } from './context.js';
import { registerWebhooks } from './webhooks/register.js';
import { mcpRoutes } from './mcp/routes.js';
import { registerSnapshots } from './snapshots/register.js';
import { registerProcesses } from './processes/register.js';
import { registerChanges } from './changes/register.js';

export async function registerSubsystems(ctx: AppContext): Promise<void> {
  // First: its shutdown step runs last, after the processes' (whose last changes it records).
  registerChanges(ctx);
  await registerWebhooks(ctx);
  ctx.extraRoutes.push(mcpRoutes);
  const snapshots = await registerSnapshots(ctx);
  const processes = await registerProcesses(ctx);
  // A restore stops the namespace's background processes first, then its warm sandbox (which binds the
  // tree being swapped); a delete does the same (its processes' hook runs first).
  snapshots.restoreHooks.push(async (ws, ns) => {
    await processes.stopNamespace(ws, ns);
    await ctx.sandbox.stopSandbox(ws, ns);
  });
  ctx.namespaceDeleteHooks.push((ws, ns) => ctx.sandbox.stopSandbox(ws, ns));
}
