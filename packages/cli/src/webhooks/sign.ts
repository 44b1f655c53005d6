/**
 * Signs a forwarded event exactly as the server signs a delivery, so a receiver's
 * verification code is exercised for real: `X-Trove-Signature: t=<s>,v1=<hex>` over
 * "<t>." + body, plus the Standard Webhooks headers over "<id>.<t>." + body, both
 * HMAC-SHA256 keyed with the secret's UTF-8 bytes.
 */
import { createHmac, randomBytes } from 'node:crypto';

const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A fresh secret in the server's format (`trove-whsec-` + 40 base62 characters). */
export function newSigningSecret(): string {
  let out = '';
  while (out.length < 40) {
    for (const b of randomBytes(80)) {
      // Rejecting bytes >= 248 (4 * 62) keeps every symbol equally likely.
      if (b < 248) out += B62[b % 62];
      if (out.length === 40) break;
    }
  }
  return 'trove-whsec-' + out;
}

export function signatureHeaders(input: {
  secret: string;
  body: string;
  eventId: string;
  timestamp: number;
}): Record<string, string> {
  const key = Buffer.from(input.secret, 'utf8');
  const hex = createHmac('sha256', key).update(`${input.timestamp}.`).update(input.body, 'utf8').digest('hex');
  const b64 = createHmac('sha256', key)
    .update(`${input.eventId}.${input.timestamp}.`)
    .update(input.body, 'utf8')
    .digest('base64');
  return {
    'x-trove-signature': `t=${input.timestamp},v1=${hex}`,
    'webhook-id': input.eventId,
    'webhook-timestamp': String(input.timestamp),
    'webhook-signature': `v1,${b64}`,
  };
}
