/**
 * Plugs the webhooks subsystem into the server: the outbox hook on the event
 * log, the admin routes and SSE stream, and the delivery worker (started after
 * listen, stopped on close).
 */
import type { AppContext } from '../context.js';
import { webhookRoutes } from './routes.js';
import { DeliverySender } from './deliver.js';
import { WebhookRepo } from './repository.js';
import { SecretBox } from './secret-box.js';
import { WebhookService } from './service.js';
import { EventStreams } from './stream.js';
import { DeliveryWorker } from './worker.js';

export async function registerWebhooks(ctx: AppContext): Promise<{ service: WebhookService; worker: DeliveryWorker }> {
  const { config } = ctx;
  const repo = new WebhookRepo(ctx.store);
  const secrets = await SecretBox.open(config.dataDir);
  const sender = new DeliverySender({
    allowPrivate: config.webhookAllowPrivate,
    timeoutMs: config.webhooks.attemptTimeoutMs,
  });
  const worker = new DeliveryWorker({
    config: config.webhooks,
    repo,
    sender,
    secrets,
    bus: ctx.bus,
    logger: ctx.logger,
    version: ctx.version,
    releaseOrphansOnStart: ctx.store.dialect === 'sqlite',
  });
  const service = new WebhookService({
    repo,
    secrets,
    sender,
    events: ctx.events,
    config,
    version: ctx.version,
    onWork: (workspaceId) => {
      worker.watch(workspaceId);
      worker.kick();
    },
  });
  const streams = new EventStreams(ctx.events, ctx.logger);

  ctx.events.onAppend(service.outboxHook, service.outboxHookSync);
  ctx.extraRoutes.push(webhookRoutes(service, streams));
  ctx.onStart.push(() => worker.start());
  ctx.onClose.push(async () => {
    await streams.closeAll();
    await worker.stop();
    await sender.close();
  });
  return { service, worker };
}
