/** Request and response schemas of the webhook routes (and so of /openapi.json). */
import { isoTime } from '../http/schemas.js';

export const webhookParams = {
  type: 'object',
  properties: { ws: { type: 'string' }, webhook_id: { type: 'string' } },
  required: ['ws', 'webhook_id'],
} as const;

export const deliveryParams = {
  type: 'object',
  properties: { ws: { type: 'string' }, webhook_id: { type: 'string' }, delivery_id: { type: 'string' } },
  required: ['ws', 'webhook_id', 'delivery_id'],
} as const;

const nullableString = { type: ['string', 'null'] } as const;
const nullableInt = { type: ['integer', 'null'] } as const;

export const webhookView = {
  type: 'object',
  properties: {
    webhook_id: { type: 'string' },
    url: { type: 'string' },
    events: {
      type: 'array',
      items: { type: 'string' },
      description: '["*"] for every type (including future ones), or a list of types',
    },
    namespace: { ...nullableString, description: 'Only events of this namespace (null: all)' },
    sources: {
      type: ['array', 'null'],
      items: { type: 'string' },
      description: 'Ours: only events whose data.source is one of these (exec, api, write, upload; null: any event)',
    },
    description: nullableString,
    enabled: { type: 'boolean' },
    created_at: isoTime,
    last_delivery_ok: { type: ['boolean', 'null'] },
    last_delivery_at: nullableString,
    last_delivery_status: nullableInt,
    disabled_reason: { ...nullableString, description: 'Ours: why the endpoint is disabled' },
    consecutive_failures: { type: 'integer', description: 'Ours: deliveries in a row that failed for good' },
  },
} as const;

const warnings = {
  type: 'array',
  description:
    'Ours, only when there is something to note about the accepted URL. `dns_unresolved`: the host did not resolve when it was saved; ' +
    'deliveries resolve and check it again and fail, to be retried, until it does',
  items: {
    type: 'object',
    properties: { code: { type: 'string', enum: ['dns_unresolved'] }, detail: { type: 'string' } },
    required: ['code', 'detail'],
  },
} as const;

export const createdWebhookView = {
  ...webhookView,
  properties: {
    ...webhookView.properties,
    signing_secret: { type: 'string', description: 'trove-whsec-…; shown only in this response' },
    warnings,
  },
} as const;

/** The PATCH answer: the endpoint, plus the notes on a new `url`. */
export const updatedWebhookView = {
  ...webhookView,
  properties: { ...webhookView.properties, warnings },
} as const;

const filterProperties = {
  url: { type: 'string', description: 'http(s) URL that receives a POST per event' },
  events: { type: 'array', items: { type: 'string' }, description: '["*"] (default) or event types' },
  namespace: { ...nullableString, description: 'Only this namespace (null: every namespace)' },
  sources: {
    type: ['array', 'null'],
    items: { type: 'string' },
    description:
      "Ours: only events whose data.source is one of these: exec (changes made by commands), api (the files API's writes and deletes), write, upload; null (default): any event, with or without a source",
  },
  description: nullableString,
} as const;

export const createBody = {
  type: 'object',
  properties: filterProperties,
  required: ['url'],
} as const;

export const updateBody = {
  type: 'object',
  properties: {
    enabled: {
      type: 'boolean',
      description: 'true re-enables an auto-disabled endpoint and resets its failure streak',
    },
    ...filterProperties,
  },
} as const;

export const deliveryView = {
  type: 'object',
  properties: {
    delivery_id: { type: 'string' },
    webhook_id: { type: 'string' },
    event_id: { type: 'string' },
    event_type: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    last_status_code: nullableInt,
    last_error: nullableString,
    last_attempt_at: nullableString,
    next_attempt_at: nullableString,
    delivered_at: nullableString,
    created_at: isoTime,
  },
} as const;

export const attemptView = {
  type: 'object',
  properties: {
    attempted_at: isoTime,
    status_code: nullableInt,
    error: nullableString,
    duration_ms: { type: 'integer' },
    next_attempt_at: nullableString,
  },
} as const;

export const deliveryDetailView = {
  ...deliveryView,
  properties: {
    ...deliveryView.properties,
    attempt_history: { type: 'array', items: attemptView, description: 'Every attempt, oldest first' },
  },
} as const;

export const testResult = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    event_id: { type: 'string' },
    status: { ...nullableInt, description: "The receiver's HTTP status, or null when unreachable" },
    error: nullableString,
    delivery_id: { type: 'string', description: 'Ours: the delivery log entry of this test' },
  },
} as const;
