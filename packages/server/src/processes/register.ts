/**
 * Plugs background processes into the server: records of processes that a
 * previous run left "running" are ended before the server listens; then the
 * routes, the namespace deletion hook (its processes stop first), the
 * retention sweeper and cluster heartbeat (after listen), and shutdown (every
 * running process killed and recorded as server_restart, before exec closes).
 */
import type { AppContext } from '../context.js';
import { processRoutes } from './routes.js';
import { LocalProcessControl, PgProcessControl, type ProcessControl } from './control.js';
import { ProcessService } from './service.js';
import { ProcessStreams } from './stream.js';

export async function registerProcesses(ctx: AppContext): Promise<ProcessService> {
  const { store } = ctx;
  let control: ProcessControl = new LocalProcessControl();
  if (store.dialect === 'postgres' && store.pgPool) {
    // The session reuses the pool's connection settings but lives outside it (as the event bus's does).
    const { max: _max, min: _min, idleTimeoutMillis: _idle, ...config } = store.pgPool.options;
    control = new PgProcessControl(store.db, config, ctx.logger);
  }
  const service = new ProcessService({
    db: store.db,
    cluster: store.dialect === 'postgres',
    dataDir: ctx.config.dataDir,
    events: ctx.events,
    sandbox: ctx.sandbox,
    namespaces: ctx.namespaces,
    files: ctx.files,
    locks: ctx.locks,
    config: ctx.config,
    logger: ctx.logger,
    control,
  });
  await service.recover();
  const streams = new ProcessStreams(service, ctx.logger);
  ctx.extraRoutes.push(processRoutes(service, streams));
  // First: a deleted namespace's processes stop before anything else of it goes.
  ctx.namespaceDeleteHooks.unshift((ws, ns) => service.deleteNamespace(ws, ns));
  ctx.onStart.push(async () => service.startWorkers());
  ctx.onClose.push(async () => {
    await streams.closeAll();
    await service.close();
  });
  return service;
}
