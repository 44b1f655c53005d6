/**
 * The per-key rate limit (TROVE_RATE_LIMIT_PER_MINUTE, RateLimiter in http/auth.ts), in-process with inject():
 * counted per key after authentication, errors included; public routes, unknown URLs and rejected keys are
 * not counted; over the limit a 429 with the API's error body and one Retry-After.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { RateLimiter } from '../../src/http/auth.js';
import { startTestApp, type TestApp } from '../helpers/app.js';

interface Running {
  t: TestApp;
  key: string;
  otherKey: string;
}

async function start(env: Record<string, string>): Promise<Running> {
  const t = await startTestApp({ env });
  const other = await t.createKey({ name: 'other' });
  return { t, key: t.runtimeKey, otherKey: other.api_key };
}

const get = (r: Running, url: string, key?: string): Promise<LightMyRequestResponse> =>
  r.t.request('GET', url, { key, namespace: 'limits' });

describe('per-key rate limit', () => {
  let r: Running;
  beforeAll(async () => {
    r = await start({ TROVE_RATE_LIMIT_PER_MINUTE: '3' });
  });
  afterAll(() => r?.t.close());

  it('counts every authenticated answer of a key, errors included, then answers 429 with one Retry-After', async () => {
    expect((await get(r, '/v1/me', r.key)).statusCode).toBe(200);
    // Not counted: a public route, an unknown URL, a missing and a wrong key.
    expect((await get(r, '/healthz')).statusCode).toBe(200);
    expect((await get(r, '/no/such/route', r.key)).statusCode).toBe(404);
    expect((await get(r, '/v1/me')).statusCode).toBe(401);
    expect((await get(r, '/v1/me', 'trove-sk-' + '0'.repeat(48))).statusCode).toBe(401);
    // A route's own 404 counts like any answer.
    expect((await get(r, '/files/nope.txt', r.key)).statusCode).toBe(404);
    expect((await get(r, '/v1/me', r.key)).statusCode).toBe(200);

    const refused = await get(r, '/v1/me', r.key);
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({ detail: 'Rate limit of 3 requests per minute exceeded', code: 'rate_limited' });
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(typeof refused.headers['retry-after']).toBe('string'); // one header, not a list
  });

  it('gives every key its own budget', async () => {
    expect((await get(r, '/v1/me', r.otherKey)).statusCode).toBe(200);
    expect((await get(r, '/v1/me', r.key)).statusCode).toBe(429);
  });
});

describe('without a rate limit (the default)', () => {
  let r: Running;
  beforeAll(async () => {
    r = await start({});
  });
  afterAll(() => r?.t.close());

  it('answers every request', async () => {
    for (let i = 0; i < 20; i++) expect((await get(r, '/v1/me', r.key)).statusCode).toBe(200);
  });
});

describe('RateLimiter', () => {
  it('lets concurrent requests of one key through up to the limit, each with its own count', async () => {
    const limiter = new RateLimiter(3);
    const answers = await Promise.all(Array.from({ length: 5 }, async () => limiter.take('k', 1_000)));
    expect(answers).toEqual([0, 0, 0, 60, 60]);
  });

  it('starts a new window a minute after the first request of the last one', () => {
    const limiter = new RateLimiter(1);
    expect(limiter.take('k', 0)).toBe(0);
    expect(limiter.take('k', 59_500)).toBe(1);
    expect(limiter.take('k', 60_000)).toBe(0);
  });

  it('remembers a bounded number of keys, dropping the least recently seen', () => {
    const limiter = new RateLimiter(1, 3);
    for (const k of ['a', 'b', 'c']) expect(limiter.take(k, 0)).toBe(0);
    expect(limiter.take('a', 1)).toBe(60); // refused; a is now the most recently seen
    expect(limiter.take('d', 2)).toBe(0); // drops b
    expect(limiter.trackedKeys).toBe(3);
    expect(limiter.take('b', 3)).toBe(0); // b's window was forgotten
    expect(limiter.take('a', 4)).toBe(60); // a's was not
  });
});
