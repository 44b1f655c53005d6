/** JSON-schema pieces shared by the route definitions (and so by /openapi.json). */
export const errorBody = {
  type: 'object',
  description: 'Every non-2xx response',
  properties: { detail: { type: 'string' }, code: { type: 'string' } },
  required: ['detail'],
} as const;

/** Standard error responses for a route, by status. */
export function errors(...statuses: number[]) {
  const out: Record<number, typeof errorBody> = {};
  for (const s of statuses) out[s] = errorBody;
  return out;
}

export const nsHeader = {
  type: 'object',
  properties: {
    'x-namespace': {
      type: 'string',
      description: 'Namespace (1-64 of [A-Za-z0-9._-]); optional for namespace-locked keys',
    },
  },
} as const;

export const isoTime = {
  type: 'string',
  description: 'ISO-8601 UTC with milliseconds, e.g. 2026-11-25T10:00:00.123Z',
} as const;

export const eventEnvelope = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    event_id: { type: 'string' },
    type: { type: 'string' },
    api_version: { type: 'string' },
    workspace_id: { type: 'string' },
    namespace: { type: ['string', 'null'] },
    created_at: isoTime,
    data: { type: 'object', additionalProperties: true },
  },
  required: ['id', 'event_id', 'type', 'api_version', 'workspace_id', 'namespace', 'created_at', 'data'],
} as const;

export const workspaceParams = {
  type: 'object',
  properties: { ws: { type: 'string' } },
  required: ['ws'],
} as const;
