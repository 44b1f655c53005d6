/**
 * Delivery signatures. Two schemes sign the same raw body with the same key,
 * the webhook's signing secret as UTF-8 bytes:
 * - docs/protocol.md: `X-Trove-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.
 * - Standard Webhooks (ours): `webhook-signature: v1,<base64 HMAC-SHA256(secret, "<id>.<t>." + body)>`.
 *   The spec's verifiers take `whsec_<base64 key>`; ours is `whsec_` + base64(UTF-8 of
 *   the trove-whsec-… secret), see `standardWebhooksSecret` and docs/webhooks.md.
 */
import { createHmac } from 'node:crypto';

export interface SignInput {
  secret: string;
  /** The exact bytes that are sent as the request body. */
  body: string;
  /** Unix seconds. */
  timestamp: number;
  /** Standard Webhooks message id: the event id, so retries keep it (receivers dedupe on it). */
  messageId: string;
}

export function troveSignature(secret: string, timestamp: number, body: string): string {
  const hex = createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`${timestamp}.`)
    .update(body, 'utf8')
    .digest('hex');
  return `t=${timestamp},v1=${hex}`;
}

export function standardSignature(secret: string, messageId: string, timestamp: number, body: string): string {
  const b64 = createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`${messageId}.${timestamp}.`)
    .update(body, 'utf8')
    .digest('base64');
  return `v1,${b64}`;
}

/** The secret in the form Standard Webhooks libraries expect (`new Webhook(secret)`). */
export function standardWebhooksSecret(signingSecret: string): string {
  return 'whsec_' + Buffer.from(signingSecret, 'utf8').toString('base64');
}

/** Every signature header of one attempt (the timestamp is the attempt's, not the event's). */
export function signatureHeaders(input: SignInput): Record<string, string> {
  return {
    'x-trove-signature': troveSignature(input.secret, input.timestamp, input.body),
    'webhook-id': input.messageId,
    'webhook-timestamp': String(input.timestamp),
    'webhook-signature': standardSignature(input.secret, input.messageId, input.timestamp, input.body),
  };
}
