/** The request headers of one delivery attempt (docs/protocol.md "Delivery and signatures", Standard Webhooks included). */
import type { EventEnvelope } from '../events/service.js';
import { signatureHeaders } from './sign.js';

export function buildHeaders(input: {
  secret: string;
  body: string;
  event: Pick<EventEnvelope, 'id' | 'type'>;
  deliveryId: string;
  version: string;
  /** Unix seconds of this attempt. */
  timestamp: number;
}): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': `Trove-Webhooks/${input.version}`,
    'x-trove-event': input.event.type,
    'x-trove-event-id': input.event.id,
    // Ours: which delivery (endpoint × event) this is, to match the delivery log.
    'x-trove-delivery-id': input.deliveryId,
    ...signatureHeaders({
      secret: input.secret,
      body: input.body,
      timestamp: input.timestamp,
      messageId: input.event.id,
    }),
  };
}
