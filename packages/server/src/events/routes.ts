/** The event log: `GET /v1/workspaces/{ws}/events`, with our `wait` long-poll. */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { AppError } from '../errors.js';
import { parseTimeMicros } from '../ids.js';
import { requireWorkspace } from '../auth/service.js';
import { validateNamespaceName } from '../namespaces/service.js';
import { publicEnvelope, type EventQuery } from './service.js';
import { parseSources } from './source-filter.js';
import { errors, eventEnvelope, workspaceParams } from '../http/schemas.js';

interface Query {
  limit?: number;
  namespace?: string;
  types?: string;
  source?: string;
  since?: string;
  cursor?: string;
  wait?: number;
}

export async function eventRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get<{ Params: { ws: string }; Querystring: Query }>(
    '/v1/workspaces/:ws/events',
    {
      schema: {
        summary: 'List events, newest first (wait=<s> long-polls for new ones)',
        tags: ['events'],
        params: workspaceParams,
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, default: 20, description: 'Default 20; values above 200 are capped' },
            namespace: { type: 'string' },
            types: { type: 'string', description: 'Comma-separated event types' },
            source: {
              type: 'string',
              description:
                'Ours: comma-separated data.source values: exec (changes made by commands), api (the files API: write, upload and its deletes), write, upload',
            },
            since: { type: 'string', description: 'Exclusive lower bound (ISO time)' },
            cursor: { type: 'string' },
            wait: { type: 'number', minimum: 0, maximum: 30, description: 'Ours: long-poll seconds (≤30)' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { events: { type: 'array', items: eventEnvelope }, next_cursor: { type: ['string', 'null'] } },
          },
          ...errors(400, 401, 403, 404, 422),
        },
      },
    },
    async (req) => {
      const { auth } = req;
      requireWorkspace(auth, req.params.ws);
      const q = req.query;
      let namespace: string | null = null;
      if (q.namespace !== undefined && q.namespace !== '') namespace = validateNamespaceName(q.namespace);
      if (auth.namespace !== null) {
        if (namespace !== null && namespace !== auth.namespace) {
          throw new AppError('namespace_forbidden', `This key is locked to namespace "${auth.namespace}"`);
        }
        namespace = auth.namespace;
      }
      let sinceMicros: number | undefined;
      if (q.since !== undefined && q.since !== '') {
        const parsed = parseTimeMicros(q.since);
        if (parsed === null) throw new AppError('query_invalid', `Invalid since: "${q.since}" (use an ISO-8601 time)`);
        sinceMicros = parsed;
      }
      const types = (q.types ?? '')
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);
      const query: EventQuery = {
        namespace,
        types,
        sources: parseSources(q.source),
        sinceMicros,
        cursor: q.cursor || undefined,
        limit: Math.min(q.limit ?? 20, 200),
      };
      const waitMs = Math.round((q.wait ?? 0) * 1000);
      if (waitMs <= 0 || query.cursor) {
        const page = await deps.events.list(auth.workspaceId, query);
        return { events: page.events.map(publicEnvelope), next_cursor: page.next_cursor };
      }
      // Long-poll: subscribe before the first query so nothing slips between. One waiter object and one
      // listener for the client going away: a long-poll is renewed at every event by every tail (waiters.ts).
      const waiter = deps.events.waiter(auth.workspaceId);
      const gone = () => waiter.end();
      req.raw.once('close', gone);
      const deadline = Date.now() + waitMs;
      try {
        for (;;) {
          const page = await deps.events.list(auth.workspaceId, query);
          const left = deadline - Date.now();
          if (page.events.length > 0 || left <= 0 || waiter.ended) {
            return { events: page.events.map(publicEnvelope), next_cursor: page.next_cursor };
          }
          await waiter.wait(left);
        }
      } finally {
        req.raw.off('close', gone);
        waiter.dispose();
      }
    },
  );
}
