/**
 * meta/routes.ts in-process: `/healthz` tells anyone only up or down and writes nothing to disk;
 * `/v1/admin/health` gives an admin key the details (database, volume, disk, exec, version); `/openapi.json`.
 * A missing data dir makes both health routes say so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renameSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
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

  it('writes nothing to the data dir', async () => {
    const seen: string[] = [];
    const watcher: FSWatcher = watch(t.dataDir, { recursive: true }, (_event, name) => {
      // The database's own files may change with background work; a probe file would be anything else.
      if (name && !/trove\.db/.test(name)) seen.push(String(name));
    });
    try {
      for (let i = 0; i < 20; i++) expect((await t.request('GET', '/healthz')).statusCode).toBe(200);
      for (let i = 0; i < 5; i++) expect((await t.as(t.adminKey).get('/v1/admin/health')).statusCode).toBe(200);
      // inotify reports in order: once our own marker is seen, anything the probes did has been seen too.
      writeFileSync(`${t.dataDir}/marker`, 'x');
      for (let i = 0; i < 500 && !seen.includes('marker'); i++) await sleep(10);
      expect(seen.filter((n) => n !== 'marker')).toEqual([]);
      expect(seen).toContain('marker');
    } finally {
      watcher.close();
    }
  });
});

describe('GET /v1/admin/health', () => {
  it('gives an admin key the details', async () => {
    const res = await t.as(t.adminKey).get('/v1/admin/health');
    expect(res.statusCode).toBe(200);
    const body = res.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual([
      'cgroups',
      'change_tracking',
      'database',
      'disk',
      'exec',
      'exec_fix',
      'exec_reason',
      'sandbox_pool',
      'status',
      'version',
      'volume',
      'warm_sandboxes',
    ]);
    expect(body).toMatchObject({ status: 'ok', database: 'ok', volume: 'ok', version: t.ctx.version });
    expect(body.warm_sandboxes).toEqual({ running: 0, idle: 0, max: 256, idle_ms: 300_000 });
    const pool = body.sandbox_pool as Record<string, number>;
    expect(Object.keys(pool).sort()).toEqual(['claimed', 'failed', 'making', 'ready', 'size']);
    // The pool exists only with the sandbox up as root (then 8 by default), and no claim has happened here.
    expect(pool.size).toBe(body.exec === 'bubblewrap' && process.getuid?.() === 0 ? 8 : 0);
    expect(pool).toMatchObject({ claimed: 0, failed: 0 });
    expect(['bubblewrap', 'insecure', 'unavailable']).toContain(body.exec);
    const tracking = body.change_tracking as { mode: string; limits: string[]; max_per_command: number };
    expect(['fanotify', 'scan', 'off']).toContain(tracking.mode);
    expect(tracking.max_per_command).toBe(1000);
    // Only scan and off have limits to state.
    expect(tracking.limits.length > 0).toBe(tracking.mode !== 'fanotify');
    const cgroups = body.cgroups as { mode: string; controllers: string[]; missing: string[] } | null;
    if (cgroups !== null) {
      expect(Object.keys(cgroups).sort()).toEqual(['controllers', 'missing', 'mode']);
      expect(['v1', 'v2', 'none']).toContain(cgroups.mode);
    }
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

describe('an unusable data dir', () => {
  it('makes /healthz answer 503 without details, and the admin details say why', async () => {
    const moved = t.dataDir + '.moved';
    renameSync(t.dataDir, moved);
    try {
      const res = await t.request('GET', '/healthz');
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect(res.json()).toEqual({
        status: 'unavailable',
        detail: 'The server cannot serve requests right now; retry shortly',
        code: 'unavailable',
      });

      const details = await t.as(t.adminKey).get('/v1/admin/health');
      expect(details.statusCode).toBe(503);
      expect(details.headers['retry-after']).toBe('5');
      expect(details.json()).toMatchObject({
        status: 'unavailable',
        volume: 'unwritable: ENOENT',
        disk: null,
        code: 'unavailable',
        detail: expect.stringContaining('volume unwritable: ENOENT'),
      });
    } finally {
      renameSync(moved, t.dataDir);
    }
    expect((await t.request('GET', '/healthz')).json()).toEqual({ status: 'ok' });
  });
});

describe('GET /openapi.json', () => {
  it('is public and lists the API', async () => {
    const res = await t.request('GET', '/openapi.json');
    expect(res.statusCode).toBe(200);
    const doc = res.json<{ openapi: string; paths: Record<string, unknown> }>();
    expect(doc.openapi).toBe('3.0.3');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/healthz', '/v1/admin/health', '/v1/me', '/files/{path}']),
    );
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
