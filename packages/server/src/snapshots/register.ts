/**
 * Plugs snapshots into the server: interrupted restores are finished or
 * rolled back before the server listens, then the routes, the namespace
 * deletion hook and the retention sweeper (started after listen, stopped on close).
 */
import { join } from 'node:path';
import type { AppContext } from '../context.js';
import { snapshotRoutes } from './routes.js';
import { recoverAllRestores, SnapshotService } from './service.js';
import { LocalBlobStore } from './blob-store.js';

export async function registerSnapshots(ctx: AppContext): Promise<SnapshotService> {
  await recoverAllRestores(ctx.config.dataDir, ctx.locks, ctx.logger);
  const blobs = new LocalBlobStore(join(ctx.config.dataDir, 'blobs', 'snapshots'));
  await blobs.init();
  const service = new SnapshotService({
    db: ctx.store.db,
    events: ctx.events,
    namespaces: ctx.namespaces,
    files: ctx.files,
    locks: ctx.locks,
    blobs,
    config: ctx.config,
    logger: ctx.logger,
  });
  ctx.extraRoutes.push(snapshotRoutes(service));
  ctx.namespaceDeleteHooks.push((ws, ns) => service.deleteNamespace(ws, ns));
  ctx.onStart.push(async () => service.startSweeper());
  ctx.onClose.push(() => service.close());
  return service;
}
