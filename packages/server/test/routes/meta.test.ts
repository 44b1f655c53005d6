/** routes/meta: `/healthz` (public), `/v1/admin/health` (admin key) and `/openapi.json`, in-process. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.close());

describe('GET /healthz', () => {
  it('answers only {"status":"ok"}, with or without a key', async () => {
    for (const key of [undefined, t.adminKey, t.runtimeKey, 'trove-sk-wrong']) {
      const res = await t.request('GET', '/healthz', { key });
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe('{"status":"ok"}');
      expect(res.headers['x-request-id']).toMatch(/\S/);
    }
  });
});

describe('GET /v1/admin/health', () => {
  it('gives an admin key the details', async () => {
    const res = await t.as(t.adminKey).get('/v1/admin/health');
    expect(res.statusCode).toBe(200);
    const body = res.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual([
      'cgroups', 'change_tracking', 'database', 'disk', 'exec', 'exec_fix', 'exec_reason', 'status', 'version', 'volume', 'warm_sandboxes',
    ]);
    expect(body).toMatchObject({ status: 'ok', database: 'ok', volume: 'ok', version: t.ctx.version });
    expect(body.warm_sandboxes).toEqual({ running: 0, idle: 0, max: 256, idle_ms: 300_000 });
    const disk = body.disk as { free_bytes: number; total_bytes: number };
    expect(disk.free_bytes).toBeGreaterThan(0);
    expect(disk.free_bytes).toBeLessThanOrEqual(disk.total_bytes);
  });

  it('refuses a workspace key (403) and a missing or wrong key (401)', async () => {
    const ws = await t.as(t.runtimeKey).get('/v1/admin/health');
    expect(ws.statusCode).toBe(403);
    expect(ws.json()).toEqual({ detail: 'Health details need an admin key.', code: 'scope_forbidden' });
    for (const key of [null, 'trove-sk-wrong']) {
      const res = await t.as(key).get('/v1/admin/health');
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({ detail: 'Invalid API key', code: 'unauthorized' });
    }
  });
});

describe('GET /openapi.json', () => {
  it('is public and lists the API', async () => {
    const res = await t.request('GET', '/openapi.json');
    expect(res.statusCode).toBe(200);
    const doc = res.json<{ openapi: string; paths: Record<string, unknown> }>();
    expect(doc.openapi).toBe('3.0.3');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/healthz', '/v1/admin/health', '/v1/me', '/files/{path}']));
  });
});

describe('unknown URLs', () => {
  it('answer 404 in the error shape, with or without a key', async () => {
    for (const key of [null, t.runtimeKey]) {
      const res = await t.as(key).get('/v2/nothing?x=1');
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ detail: 'Not found: GET /v2/nothing', code: 'not_found' });
    }
  });

  it('redirects / to the dashboard', async () => {
    const res = await t.request('GET', '/');
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/dashboard/');
  });
});
