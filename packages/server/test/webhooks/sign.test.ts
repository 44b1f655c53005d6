import { createHmac, timingSafeEqual } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  signatureHeaders,
  standardSignature,
  standardWebhooksSecret,
  troveSignature,
} from '../../src/webhooks/sign.js';
import { buildHeaders } from '../../src/webhooks/headers.js';

const secret = 'trove-whsec-0123456789abcdefghijABCDEFGHIJ0123456789';
const body = '{"id":"evt-1","type":"file.written","data":{"path":"workspace/a.txt"}}';

describe('X-Trove-Signature', () => {
  it('is t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>', () => {
    const expected = createHmac('sha256', secret).update(`1700000000.${body}`).digest('hex');
    expect(troveSignature(secret, 1700000000, body)).toBe(`t=1700000000,v1=${expected}`);
  });

  it('signs the UTF-8 bytes of non-ASCII bodies', () => {
    const unicode = '{"path":"workspace/é—😀.txt"}';
    const expected = createHmac('sha256', Buffer.from(secret, 'utf8'))
      .update(Buffer.concat([Buffer.from('5.'), Buffer.from(unicode, 'utf8')]))
      .digest('hex');
    expect(troveSignature(secret, 5, unicode)).toBe(`t=5,v1=${expected}`);
  });

  it('changes with the body, the timestamp and the secret', () => {
    const base = troveSignature(secret, 10, body);
    expect(troveSignature(secret, 10, body + ' ')).not.toBe(base);
    expect(troveSignature(secret, 11, body).split('v1=')[1]).not.toBe(base.split('v1=')[1]);
    expect(troveSignature(secret + 'x', 10, body)).not.toBe(base);
  });
});

/** A Standard Webhooks verifier written from the spec (what off-the-shelf libraries do). */
function verifyStandard(whsec: string, headers: Record<string, string>, payload: string): boolean {
  const key = Buffer.from(whsec.replace(/^whsec_/, ''), 'base64');
  const content = `${headers['webhook-id']}.${headers['webhook-timestamp']}.${payload}`;
  const expected = createHmac('sha256', key).update(content).digest();
  return headers['webhook-signature']!.split(' ').some((sig) => {
    const [version, b64] = sig.split(',');
    if (version !== 'v1' || !b64) return false;
    const got = Buffer.from(b64, 'base64');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}

describe('Standard Webhooks headers', () => {
  it('verify with the spec algorithm and the documented whsec_ form of the secret', () => {
    const headers = signatureHeaders({ secret, body, timestamp: 1700000000, messageId: 'evt-1' });
    expect(headers['webhook-id']).toBe('evt-1');
    expect(headers['webhook-timestamp']).toBe('1700000000');
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(verifyStandard(standardWebhooksSecret(secret), headers, body)).toBe(true);
    expect(verifyStandard(standardWebhooksSecret(secret), headers, body.replace('a.txt', 'b.txt'))).toBe(false);
    expect(verifyStandard(standardWebhooksSecret(secret + 'x'), headers, body)).toBe(false);
  });

  it('signs "<id>.<t>.<body>" keyed with the UTF-8 secret', () => {
    const expected = createHmac('sha256', secret).update(`evt-9.42.${body}`).digest('base64');
    expect(standardSignature(secret, 'evt-9', 42, body)).toBe(`v1,${expected}`);
    expect(standardWebhooksSecret('abc')).toBe('whsec_YWJj');
  });
});

describe('buildHeaders', () => {
  it('sends every header docs/protocol.md lists plus ours', () => {
    const h = buildHeaders({
      secret,
      body,
      event: { id: 'evt-1', type: 'file.written' },
      deliveryId: 'dlv-1',
      version: '1.2.3',
      timestamp: 1700000000,
    });
    expect(h).toEqual({
      'content-type': 'application/json',
      'user-agent': 'Trove-Webhooks/1.2.3',
      'x-trove-event': 'file.written',
      'x-trove-event-id': 'evt-1',
      'x-trove-delivery-id': 'dlv-1',
      'x-trove-signature': troveSignature(secret, 1700000000, body),
      'webhook-id': 'evt-1',
      'webhook-timestamp': '1700000000',
      'webhook-signature': standardSignature(secret, 'evt-1', 1700000000, body),
    });
    expect(JSON.stringify(h)).not.toContain(secret);
  });
});
