/**
 * Webhook endpoints under /v1/workspaces/{ws}/webhooks (admin scope), their
 * delivery log, and the SSE event stream (any key of the workspace).
 */
import type { FastifyInstance } from 'fastify';
import type { AppContext, RoutePlugin } from '../context.js';
import { AppError } from '../errors.js';
import { requireAdmin, requireWorkspace } from '../auth/service.js';
import { validateNamespaceName } from '../namespaces/service.js';
import type { WebhookCreateInput, WebhookService, WebhookUpdateInput } from './service.js';
import type { EventStreams } from './stream.js';
import { parseSources } from '../events/source-filter.js';
import { errors, workspaceParams } from '../http/schemas.js';
import {
  createBody,
  createdWebhookView,
  deliveryDetailView,
  deliveryParams,
  deliveryView,
  testResult,
  updateBody,
  updatedWebhookView,
  webhookParams,
  webhookView,
} from './schemas.js';

type WsParams = { ws: string };
type HookParams = { ws: string; webhook_id: string };
type DeliveryParams = HookParams & { delivery_id: string };

const DEFAULT_HEARTBEAT_S = 15;

export function webhookRoutes(service: WebhookService, streams: EventStreams): RoutePlugin {
  return async (app: FastifyInstance, deps: AppContext) => {
    const base = '/v1/workspaces/:ws/webhooks';

    app.post<{ Params: WsParams; Body: WebhookCreateInput }>(
      base,
      {
        schema: {
          summary: 'Create a webhook endpoint (the signing secret is shown once)',
          description:
            'The URL is refused (400) when its host is, or resolves to, any loopback, private, link-local or other ' +
            'non-public address. A host that does not resolve yet is accepted: `warnings` says so, and each delivery ' +
            'attempt resolves and checks it again.',
          tags: ['webhooks'],
          params: workspaceParams,
          body: createBody,
          response: { 201: createdWebhookView, ...errors(400, 401, 403, 404, 409, 422) },
        },
      },
      async (req, reply) => {
        requireAdmin(req.auth, req.params.ws, 'webhooks');
        return reply.code(201).send(await service.create(req.params.ws, req.body));
      },
    );

    app.get<{ Params: WsParams }>(
      base,
      {
        schema: {
          summary: 'List webhook endpoints with their last delivery outcome',
          tags: ['webhooks'],
          params: workspaceParams,
          response: {
            200: { type: 'object', properties: { webhooks: { type: 'array', items: webhookView } } },
            ...errors(401, 403, 404),
          },
        },
      },
      async (req) => {
        requireAdmin(req.auth, req.params.ws, 'webhooks');
        return { webhooks: await service.list(req.params.ws) };
      },
    );

    // A static segment wins over `:webhook_id` in the router, so "stream" is never taken for an id.
    app.get<{
      Params: WsParams;
      Querystring: { namespace?: string; types?: string; source?: string; heartbeat?: number };
    }>(
      `${base}/stream`,
      {
        schema: {
          summary: 'Server-Sent Events: {"type":"connected"}, then every new event (any key of the workspace)',
          description:
            'Each message is one line `data: <json>` and a blank line; `: ping` comments are heartbeats. A namespace-scoped key receives only its namespace. No replay: use the events list to catch up.',
          tags: ['webhooks', 'events'],
          produces: ['text/event-stream'],
          params: workspaceParams,
          querystring: {
            type: 'object',
            properties: {
              namespace: { type: 'string', description: 'Ours: only this namespace' },
              types: { type: 'string', description: 'Ours: comma-separated event types' },
              source: {
                type: 'string',
                description: 'Ours: comma-separated data.source values (exec, api, write, upload)',
              },
              heartbeat: {
                type: 'integer',
                minimum: 1,
                maximum: 60,
                description: 'Ours: seconds between pings (default 15)',
              },
            },
          },
          response: {
            200: { description: 'text/event-stream', type: 'string' },
            ...errors(401, 403, 404, 422),
          },
        },
      },
      async (req, reply) => {
        const { auth } = req;
        requireWorkspace(auth, req.params.ws);
        let namespace: string | null = null;
        if (req.query.namespace !== undefined && req.query.namespace !== '')
          namespace = validateNamespaceName(req.query.namespace);
        if (auth.namespace !== null) {
          if (namespace !== null && namespace !== auth.namespace) {
            throw new AppError('namespace_forbidden', `This key is locked to namespace "${auth.namespace}"`);
          }
          namespace = auth.namespace;
        }
        const types = (req.query.types ?? '')
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean);
        // Checked before the stream starts: a bad value is a JSON 400, not a stream that says nothing.
        const sources = parseSources(req.query.source);
        reply.hijack();
        await streams.serve(req.raw, reply.raw, {
          workspaceId: auth.workspaceId,
          namespace,
          types: types.length > 0 ? types : null,
          sources,
          heartbeatMs: (req.query.heartbeat ?? DEFAULT_HEARTBEAT_S) * 1000,
          requestId: req.id,
          keyId: auth.keyId,
          keyStillValid: async () => {
            try {
              return (await deps.auth.authenticate(req.headers.authorization)).keyId === auth.keyId;
            } catch {
              return false;
            }
          },
        });
      },
    );
    // Open streams end before the server stops accepting, so clients see a clean end of stream.
    app.addHook('preClose', async () => streams.closeAll());

    app.get<{ Params: HookParams }>(
      `${base}/:webhook_id`,
      {
        schema: {
          summary: 'Retrieve a webhook endpoint',
          tags: ['webhooks'],
          params: webhookParams,
          response: { 200: webhookView, ...errors(401, 403, 404) },
        },
      },
      async (req) => {
        requireAdmin(req.auth, req.params.ws, 'webhooks');
        return service.retrieve(req.params.ws, req.params.webhook_id);
      },
    );

    app.patch<{ Params: HookParams; Body: WebhookUpdateInput }>(
      `${base}/:webhook_id`,
      {
        schema: {
          summary: 'Update a webhook endpoint (ours); {"enabled": true} re-enables it after an auto-disable',
          description:
            'Changes any of `enabled`, `url`, `events`, `namespace`, `description`. Auto-disable: after ' +
            '`TROVE_WEBHOOK_DISABLE_AFTER` (default 50) deliveries in a row failed for good, the server sets ' +
            '`enabled: false` and explains why in `disabled_reason`; new events are not queued for it meanwhile, its ' +
            'pending deliveries wait. `{"enabled": true}` re-enables it, resets `consecutive_failures` and sends the ' +
            'pending deliveries; `{"enabled": false}` disables it by hand. A new `url` passes the same checks as at creation ' +
            '(and an unresolvable host is accepted the same way, with `warnings`).',
          tags: ['webhooks'],
          params: webhookParams,
          body: updateBody,
          response: { 200: updatedWebhookView, ...errors(400, 401, 403, 404, 422) },
        },
      },
      async (req) => {
        requireAdmin(req.auth, req.params.ws, 'webhooks');
        return service.update(req.params.ws, req.params.webhook_id, req.body ?? {});
      },
    );

    app.delete<{ Params: HookParams }>(
      `${base}/:webhook_id`,
      {
        schema: {
          summary: 'Delete a webhook endpoint and its delivery log',
          tags: ['webhooks'],
          params: webhookParams,
          response: {
            200: { type: 'object', properties: { webhook_id: { type: 'string' }, deleted: { type: 'boolean' } } },
            ...errors(401, 403, 404),
          },
        },
      },
      async (req) => {
        requireAdmin(req.auth, req.params.ws, 'webhooks');
        return service.delete(req.params.ws, req.params.webhook_id);
      },
    );

    app.get<{ Params: HookParams; Querystring: { limit?: number; status?: 'pending' | 'delivered' | 'failed' } }>(
      `${base}/:webhook_id/deliveries`,
      {
        schema: {
          summary: "A webhook's delivery log, newest event first (ours)",
          description:
            'One entry per (event, endpoint): `status` pending, delivered or failed, the number of `attempts`, the last ' +
            'status code and error, and `next_attempt_at` while pending. Entries are kept 30 days after they finish.',
          tags: ['webhooks'],
          params: webhookParams,
          querystring: {
            type: 'object',
            properties: {
              limit: {
                type: 'integer',
                minimum: 1,
                default: 20,
                description: 'Default 20; values above 100 are capped',
              },
              status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
            },
          },
          response: {
            200: { type: 'object', properties: { deliveries: { type: 'array', items: deliveryView } } },
            ...errors(401, 403, 404, 422),
          },
        },
      },
      async (req) => {
        requireAdmin(req.auth, req.params.ws, 'webhooks');
        const deliveries = await service.listDeliveries(req.params.ws, req.params.webhook_id, {
          limit: Math.min(req.query.limit ?? 20, 100),
          status: req.query.status,
        });
        return { deliveries };
      },
    );

    app.get<{ Params: DeliveryParams }>(
      `${base}/:webhook_id/deliveries/:delivery_id`,
      {
        schema: {
          summary: 'One delivery with every attempt (ours)',
          description:
            '`attempt_history` lists every attempt oldest first: when, the receiver status (null when unreachable), the ' +
            'error, how long it took, and when the next attempt was scheduled.',
          tags: ['webhooks'],
          params: deliveryParams,
          response: { 200: deliveryDetailView, ...errors(401, 403, 404) },
        },
      },
      async (req) => {
        requireAdmin(req.auth, req.params.ws, 'webhooks');
        return service.retrieveDelivery(req.params.ws, req.params.webhook_id, req.params.delivery_id);
      },
    );

    // test and resend take no body; clients may still send `Content-Type: application/json`
    // with an empty (or any) body, which is ignored instead of answered with a parse error.
    await app.register(async (bodiless: FastifyInstance) => {
      bodiless.removeAllContentTypeParsers();
      bodiless.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, _body, done) => done(null, undefined));

      bodiless.post<{ Params: HookParams }>(
        `${base}/:webhook_id/test`,
        {
          schema: {
            summary: 'Send one signed webhook.test delivery now; a receiver failure is ok: false, not an error',
            description:
              'No body. Stores a `webhook.test` event and delivers it synchronously to this endpoint only (even when ' +
              'disabled); not retried, not counted towards auto-disable, recorded in the delivery log.',
            tags: ['webhooks'],
            params: webhookParams,
            response: { 200: testResult, ...errors(401, 403, 404) },
          },
        },
        async (req) => {
          requireAdmin(req.auth, req.params.ws, 'webhooks');
          return service.test(req.params.ws, req.params.webhook_id);
        },
      );

      bodiless.post<{ Params: DeliveryParams }>(
        `${base}/:webhook_id/deliveries/:delivery_id/resend`,
        {
          schema: {
            summary: 'Queue a delivery again (ours); it goes out before newer pending deliveries of the endpoint',
            description:
              'No body. A delivered or failed delivery becomes `pending` with a fresh retry window; a pending one is ' +
              'made due now. If an attempt is on its way, the event is sent once more after it, whatever its outcome. ' +
              '409 while the endpoint is disabled (re-enable it with PATCH first).',
            tags: ['webhooks'],
            params: deliveryParams,
            response: { 200: deliveryView, ...errors(401, 403, 404, 409) },
          },
        },
        async (req) => {
          requireAdmin(req.auth, req.params.ws, 'webhooks');
          return service.resend(req.params.ws, req.params.webhook_id, req.params.delivery_id);
        },
      );
    });
  };
}
