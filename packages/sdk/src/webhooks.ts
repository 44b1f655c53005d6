/**
 * Webhook signature verification. Trove signs each delivery with
 * `X-Trove-Signature: t=<unix seconds>,v1=<hex>` where
 * `hex = HMAC-SHA256(signing secret, "<t>." + raw body)`; several `v1` values may be
 * present while a secret is rotated, and any one matching is enough.
 *
 * Two entry points compute the same thing:
 * - `verifyWebhook` is synchronous and uses `node:crypto`, loaded lazily through
 *   `process.getBuiltinModule` (Node ≥ 20.16, Bun, Deno) so that importing this
 *   package never pulls `node:crypto` into an edge bundle.
 * - `verifyWebhookAsync` uses Web Crypto (`crypto.subtle`) and runs anywhere,
 *   including Cloudflare Workers, Vercel Edge and browsers.
 */
import { WebhookSignatureError } from './errors.js';
import { camelize } from './internal/camelize.js';
import { constantTimeEqual, fromHex, toHex } from './internal/constant-time.js';
import type { WebhookEvent } from './types.js';

/** The header carrying the signature (lower-case, as Node exposes it). */
export const SIGNATURE_HEADER = 'x-trove-signature';
/** Deliveries whose timestamp is further than this from now are rejected by default. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** The raw request body: the exact bytes received, or the text decoded from them. */
export type WebhookBody = string | Uint8Array | ArrayBuffer;

/** Request headers as a Fetch `Headers` or a Node-style record (`req.headers`). */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

/** Parameters of `verifyWebhook` and `verifyWebhookAsync`. */
export interface VerifyWebhookParams {
  /** The webhook's signing secret (`trove-whsec-…`). */
  secret: string;
  /** The raw body exactly as received (not parsed and re-serialized JSON). */
  body: WebhookBody;
  /** The `X-Trove-Signature` header value; or pass `headers` instead. */
  signatureHeader?: string | string[] | null;
  /** All request headers, from which `X-Trove-Signature` is read when `signatureHeader` is not given. */
  headers?: WebhookHeaders;
  /** Maximum age (and clock skew) accepted, in seconds (default 300; `Infinity` disables the check). */
  toleranceSeconds?: number;
  /** The current time, for tests (default `new Date()`). */
  now?: Date;
}

/** Parameters of `generateTestHeader` and `generateTestHeaderAsync`. */
export interface GenerateTestHeaderParams {
  /** The signing secret your handler verifies with. */
  secret: string;
  /** The exact body your test will send. */
  payload: string | Uint8Array;
  /** Unix seconds to sign (default now); pass an old value to test stale deliveries. */
  timestamp?: number;
}

/**
 * Verifies a delivery's signature and timestamp and returns the parsed, camelCased event.
 * Synchronous; needs `node:crypto` (Node ≥ 20.16, Bun, Deno). Throws `WebhookSignatureError`.
 * @example
 * app.post('/hooks', express.raw({ type: 'application/json' }), (req, res) => {
 *   const event = verifyWebhook({ secret, body: req.body, headers: req.headers });
 * });
 */
export function verifyWebhook(params: VerifyWebhookParams): WebhookEvent {
  const input = prepare(params);
  const crypto = nodeCrypto();
  const expected = new Uint8Array(
    crypto.createHmac('sha256', input.secret).update(`${input.timestamp}.`).update(input.body).digest(),
  );
  return finish(params, input, expected);
}

/**
 * Verifies a delivery like `verifyWebhook`, with Web Crypto: works on every runtime (edge included).
 * Throws (rejects with) `WebhookSignatureError`.
 */
export async function verifyWebhookAsync(params: VerifyWebhookParams): Promise<WebhookEvent> {
  const input = prepare(params);
  const expected = await hmacWebCrypto(input.secret, input.timestamp, input.body);
  return finish(params, input, expected);
}

/**
 * A valid `X-Trove-Signature` value for `payload`, for your own handler's tests (uses `node:crypto`).
 * @example
 * const body = JSON.stringify(event);
 * const header = generateTestHeader({ secret, payload: body });
 * await fetch(url, { method: 'POST', body, headers: { 'x-trove-signature': header } });
 */
export function generateTestHeader(params: GenerateTestHeaderParams): string {
  const timestamp = params.timestamp ?? Math.floor(Date.now() / 1000);
  const crypto = nodeCrypto();
  const hex = crypto
    .createHmac('sha256', params.secret)
    .update(`${timestamp}.`)
    .update(toBytes(params.payload, 'payload'))
    .digest('hex');
  return `t=${timestamp},v1=${hex}`;
}

/** Like `generateTestHeader`, with Web Crypto (any runtime). */
export async function generateTestHeaderAsync(params: GenerateTestHeaderParams): Promise<string> {
  const timestamp = params.timestamp ?? Math.floor(Date.now() / 1000);
  const mac = await hmacWebCrypto(params.secret, timestamp, toBytes(params.payload, 'payload'));
  return `t=${timestamp},v1=${toHex(mac)}`;
}

interface Prepared {
  secret: string;
  body: Uint8Array;
  timestamp: number;
  signatures: Uint8Array[];
}

function prepare(params: VerifyWebhookParams): Prepared {
  const { secret } = params;
  if (typeof secret !== 'string' || secret === '') {
    throw new WebhookSignatureError(
      'invalid_secret',
      "No signing secret: pass the webhook's signing_secret (trove-whsec-…) shown when it was created.",
    );
  }
  if (secret !== secret.trim()) {
    throw new WebhookSignatureError(
      'invalid_secret',
      'The signing secret has whitespace at the start or end (often a trailing newline from an env file or a copy-paste): trim it.',
    );
  }
  if (secret.startsWith('trove-sk-')) {
    throw new WebhookSignatureError(
      'invalid_secret',
      "That is an API key, not a signing secret: pass the webhook's signing_secret (trove-whsec-…).",
    );
  }
  const body = toBytes(params.body, 'body');
  const header = signatureHeaderOf(params);
  if (header === undefined || header.trim() === '') {
    throw new WebhookSignatureError(
      'missing_header',
      'Missing X-Trove-Signature header: pass signatureHeader (req.headers["x-trove-signature"]) or the request headers as `headers`.',
    );
  }
  let timestamp: number | undefined;
  const signatures: Uint8Array[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !/^\d{1,15}$/.test(value)) return malformed(header);
      timestamp = Number(value);
    } else if (key === 'v1') {
      const sig = fromHex(value);
      // A value that is not 32 bytes of hex can never match; skipping it lets a well-formed sibling verify.
      if (sig !== null && sig.length === 32) signatures.push(sig);
    }
  }
  if (timestamp === undefined || signatures.length === 0) return malformed(header);
  return { secret, body, timestamp, signatures };
}

function finish(params: VerifyWebhookParams, input: Prepared, expected: Uint8Array): WebhookEvent {
  // Compare against every candidate without stopping early, so timing does not reveal which one matched.
  let matched = false;
  for (const sig of input.signatures) matched = constantTimeEqual(expected, sig) || matched;
  if (!matched) {
    const hints = [
      'pass the raw body exactly as received, not parsed JSON turned back into a string (e.g. express.raw(), await request.text())',
      "use this webhook's own signing secret (each endpoint has its own trove-whsec-…)",
    ];
    if (!input.secret.startsWith('trove-whsec-')) hints.push('the secret does not start with trove-whsec-');
    throw new WebhookSignatureError('no_matching_signature', `No v1 signature matches: ${hints.join('; ')}.`);
  }
  const tolerance = params.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const now = Math.floor((params.now ?? new Date()).getTime() / 1000);
  const age = now - input.timestamp;
  if (Math.abs(age) > tolerance) {
    throw new WebhookSignatureError(
      'timestamp_out_of_tolerance',
      age > 0
        ? `The signature is ${age} s old (tolerance ${tolerance} s): a replayed delivery, or this machine's clock is behind.`
        : `The signature is ${-age} s in the future (tolerance ${tolerance} s): this machine's clock is behind the server's.`,
    );
  }
  const text = new TextDecoder().decode(input.body);
  try {
    return camelize<WebhookEvent>(JSON.parse(text));
  } catch {
    throw new WebhookSignatureError('invalid_json', 'The signature is valid but the body is not JSON.');
  }
}

function malformed(header: string): never {
  throw new WebhookSignatureError(
    'malformed_header',
    `Malformed X-Trove-Signature header ${JSON.stringify(header.slice(0, 100))}: expected "t=<unix seconds>,v1=<64 hex chars>".`,
  );
}

function signatureHeaderOf(params: VerifyWebhookParams): string | undefined {
  const join = (v: string | string[] | null | undefined) => (Array.isArray(v) ? v.join(',') : (v ?? undefined));
  if (params.signatureHeader !== undefined && params.signatureHeader !== null) return join(params.signatureHeader);
  const h = params.headers;
  if (!h) return undefined;
  if (typeof (h as Headers).get === 'function') return (h as Headers).get(SIGNATURE_HEADER) ?? undefined;
  for (const [k, v] of Object.entries(h)) if (k.toLowerCase() === SIGNATURE_HEADER) return join(v);
  return undefined;
}

function toBytes(value: unknown, what: 'body' | 'payload'): Uint8Array {
  if (typeof value === 'string') return new TextEncoder().encode(value);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new WebhookSignatureError(
    'body_not_raw',
    value !== null && typeof value === 'object'
      ? `The ${what} is an object: pass the raw body, not parsed JSON (e.g. express.raw({ type: 'application/json' }), or await request.text()).`
      : `The ${what} must be a string, Uint8Array or ArrayBuffer, got ${value === null ? 'null' : typeof value}.`,
  );
}

interface NodeHmac {
  update(data: string | Uint8Array): NodeHmac;
  digest(): Uint8Array;
  digest(encoding: 'hex'): string;
}

function nodeCrypto(): { createHmac(alg: 'sha256', key: string): NodeHmac } {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const mod = typeof proc?.getBuiltinModule === 'function' ? proc.getBuiltinModule('node:crypto') : undefined;
  if (!mod) {
    throw new WebhookSignatureError(
      'crypto_unavailable',
      'node:crypto is not available on this runtime: use `await verifyWebhookAsync(...)` (Web Crypto), or Node >= 20.16.',
    );
  }
  return mod as { createHmac(alg: 'sha256', key: string): NodeHmac };
}

async function hmacWebCrypto(secret: string, timestamp: number, body: Uint8Array): Promise<Uint8Array> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) {
    throw new WebhookSignatureError(
      'crypto_unavailable',
      'Web Crypto (crypto.subtle) is not available on this runtime.',
    );
  }
  const key = await subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const prefix = new TextEncoder().encode(`${timestamp}.`);
  const message = new Uint8Array(prefix.length + body.length);
  message.set(prefix);
  message.set(body, prefix.length);
  return new Uint8Array(await subtle.sign('HMAC', key, message));
}
