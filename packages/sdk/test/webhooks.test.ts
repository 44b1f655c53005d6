/**
 * verifyWebhook / verifyWebhookAsync against signatures computed here, independently,
 * with node:crypto — including header variants and every failure reason.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  WebhookSignatureError,
  generateTestHeader,
  generateTestHeaderAsync,
  verifyWebhook,
  verifyWebhookAsync,
  type VerifyWebhookParams,
  type WebhookSignatureErrorReason,
} from '../src/index.js';

const secret = 'trove-whsec-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd';
const otherSecret = 'trove-whsec-ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ';
const now = new Date('2026-11-25T10:00:00.000Z');
const t = Math.floor(now.getTime() / 1000);
const body = JSON.stringify({
  id: 'evt-1',
  event_id: 'evt-1',
  type: 'file.written',
  api_version: '2026-04-30',
  workspace_id: 'ws-1',
  namespace: 'agents',
  created_at: '2026-11-25T09:59:59.999Z',
  data: { path: 'workspace/ünï.txt', size_bytes: 12, source: 'upload' },
});
const sign = (ts: number, payload: string | Buffer = body, key = secret) =>
  createHmac('sha256', key).update(`${ts}.`).update(payload).digest('hex');
const sig = sign(t);

const variants = [verifyWebhook, (p: VerifyWebhookParams) => verifyWebhookAsync(p)] as const;

async function expectReason(params: VerifyWebhookParams, reason: WebhookSignatureErrorReason, message: RegExp) {
  for (const verify of variants) {
    let err: unknown;
    try {
      await verify(params);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WebhookSignatureError);
    expect((err as WebhookSignatureError).reason).toBe(reason);
    expect((err as WebhookSignatureError).code).toBe(reason);
    expect((err as Error).message).toMatch(message);
  }
}

describe('verifyWebhook accepts', () => {
  const expected = {
    id: 'evt-1',
    eventId: 'evt-1',
    type: 'file.written',
    apiVersion: '2026-04-30',
    workspaceId: 'ws-1',
    namespace: 'agents',
    createdAt: '2026-11-25T09:59:59.999Z',
    data: { path: 'workspace/ünï.txt', sizeBytes: 12, source: 'upload' },
  };

  it.each([
    ['canonical', `t=${t},v1=${sig}`],
    ['v1 first', `v1=${sig},t=${t}`],
    ['spaces around parts and =', ` t = ${t} , v1 = ${sig} `],
    ['rotation: several v1, the good one last', `t=${t},v1=${sign(t, body, otherSecret)},v1=${sig}`],
    ['rotation: the good one first', `t=${t},v1=${sig},v1=${sign(t, body, otherSecret)}`],
    ['unknown schemes are ignored', `t=${t},v0=deadbeef,v1=${sig},v2=abc`],
    ['a garbage v1 beside a good one', `t=${t},v1=nothex,v1=${sig}`],
    ['upper-case hex', `t=${t},v1=${sig.toUpperCase()}`],
  ])('%s', async (_name, header) => {
    for (const verify of variants) {
      expect(await verify({ secret, body, signatureHeader: header, now })).toEqual(expected);
    }
  });

  it('bytes, Buffer and ArrayBuffer bodies', async () => {
    const bytes = new TextEncoder().encode(body);
    for (const verify of variants) {
      for (const b of [bytes, Buffer.from(body), bytes.slice().buffer]) {
        expect((await verify({ secret, body: b, signatureHeader: `t=${t},v1=${sig}`, now })).id).toBe('evt-1');
      }
    }
  });

  it('the header from a Fetch Headers, a Node header record (any case), or an array', async () => {
    const header = `t=${t},v1=${sig}`;
    for (const verify of variants) {
      expect((await verify({ secret, body, headers: new Headers({ 'X-Trove-Signature': header }), now })).id).toBe(
        'evt-1',
      );
      expect((await verify({ secret, body, headers: { 'x-trove-signature': header }, now })).id).toBe('evt-1');
      expect((await verify({ secret, body, headers: { 'X-Trove-Signature': header }, now })).id).toBe('evt-1');
      expect((await verify({ secret, body, signatureHeader: [`t=${t}`, `v1=${sig}`], now })).id).toBe('evt-1');
    }
  });

  it('timestamps within the tolerance, both directions', async () => {
    for (const skew of [-300, -299, 0, 299, 300]) {
      const ts = t + skew;
      for (const verify of variants) {
        await expect(
          Promise.resolve(verify({ secret, body, signatureHeader: `t=${ts},v1=${sign(ts)}`, now })),
        ).resolves.toBeTruthy();
      }
    }
  });

  it('a custom tolerance, and Infinity to disable the check', async () => {
    const old = t - 3600;
    const header = `t=${old},v1=${sign(old)}`;
    expect(verifyWebhook({ secret, body, signatureHeader: header, now, toleranceSeconds: 3601 }).id).toBe('evt-1');
    expect(verifyWebhook({ secret, body, signatureHeader: header, now, toleranceSeconds: Infinity }).id).toBe('evt-1');
  });
});

describe('verifyWebhook rejects', () => {
  it('a stale timestamp, with how far off it is', async () => {
    const old = t - 301;
    await expectReason(
      { secret, body, signatureHeader: `t=${old},v1=${sign(old)}`, now },
      'timestamp_out_of_tolerance',
      /301 s old \(tolerance 300 s\)/,
    );
    const future = t + 400;
    await expectReason(
      { secret, body, signatureHeader: `t=${future},v1=${sign(future)}`, now },
      'timestamp_out_of_tolerance',
      /400 s in the future/,
    );
  });

  it('a tampered body', async () => {
    const tampered = body.replace('"size_bytes":12', '"size_bytes":13');
    await expectReason(
      { secret, body: tampered, signatureHeader: `t=${t},v1=${sig}`, now },
      'no_matching_signature',
      /raw body/,
    );
  });

  it('a re-serialized body (parsed and stringified with different spacing)', async () => {
    const reserialized = JSON.stringify(JSON.parse(body), null, 2);
    await expectReason(
      { secret, body: reserialized, signatureHeader: `t=${t},v1=${sig}`, now },
      'no_matching_signature',
      /not parsed JSON/,
    );
  });

  it('a tampered timestamp (signature of another t)', async () => {
    await expectReason(
      { secret, body, signatureHeader: `t=${t - 1},v1=${sig}`, now },
      'no_matching_signature',
      /No v1 signature matches/,
    );
  });

  it('the wrong secret', async () => {
    await expectReason(
      { secret: otherSecret, body, signatureHeader: `t=${t},v1=${sig}`, now },
      'no_matching_signature',
      /own signing secret/,
    );
  });

  it('a parsed JSON body', async () => {
    await expectReason(
      { secret, body: JSON.parse(body) as unknown as string, signatureHeader: `t=${t},v1=${sig}`, now },
      'body_not_raw',
      /pass the raw body, not parsed JSON/,
    );
  });

  it('a secret with whitespace, an empty secret, an API key as secret', async () => {
    await expectReason(
      { secret: secret + '\n', body, signatureHeader: `t=${t},v1=${sig}`, now },
      'invalid_secret',
      /secret has whitespace/,
    );
    await expectReason(
      { secret: ' ' + secret, body, signatureHeader: `t=${t},v1=${sig}`, now },
      'invalid_secret',
      /trim it/,
    );
    await expectReason(
      { secret: '', body, signatureHeader: `t=${t},v1=${sig}`, now },
      'invalid_secret',
      /No signing secret/,
    );
    await expectReason(
      { secret: 'trove-sk-abc', body, signatureHeader: `t=${t},v1=${sig}`, now },
      'invalid_secret',
      /API key, not a signing secret/,
    );
  });

  it('a missing header', async () => {
    await expectReason({ secret, body, now }, 'missing_header', /Missing X-Trove-Signature/);
    await expectReason({ secret, body, signatureHeader: '', now }, 'missing_header', /Missing/);
    await expectReason(
      { secret, body, headers: { 'content-type': 'application/json' }, now },
      'missing_header',
      /Missing/,
    );
  });

  it.each([
    ['no t', `v1=${sig}`],
    ['no v1', `t=${t}`],
    ['t not a number', `t=abc,v1=${sig}`],
    ['two t values', `t=${t},t=${t},v1=${sig}`],
    ['only a short v1', `t=${t},v1=abcd`],
    ['a bare signature', sig],
  ])('a malformed header: %s', async (_name, header) => {
    await expectReason(
      { secret, body, signatureHeader: header, now },
      'malformed_header',
      /expected "t=<unix seconds>,v1=<64 hex chars>"/,
    );
  });

  it('a valid signature over a body that is not JSON', async () => {
    await expectReason(
      { secret, body: 'not json', signatureHeader: `t=${t},v1=${sign(t, 'not json')}`, now },
      'invalid_json',
      /not JSON/,
    );
  });
});

describe('generateTestHeader', () => {
  it('produces headers that node:crypto agrees with and verifyWebhook accepts', async () => {
    const header = generateTestHeader({ secret, payload: body, timestamp: t });
    expect(header).toBe(`t=${t},v1=${sig}`);
    expect(await generateTestHeaderAsync({ secret, payload: new TextEncoder().encode(body), timestamp: t })).toBe(
      header,
    );
    const fresh = generateTestHeader({ secret, payload: body });
    expect(verifyWebhook({ secret, body, signatureHeader: fresh }).id).toBe('evt-1');
  });
});
