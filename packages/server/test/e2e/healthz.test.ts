/**
 * `/healthz` tells anyone only up or down and writes nothing to disk;
 * `/v1/admin/health` gives an admin key the details (database, volume, disk,
 * exec, version). A missing data dir makes both say so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renameSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';

let server: StartedServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server?.close();
});

const get = (path: string, key?: string) =>
  fetch(server.baseUrl + path, { headers: key ? { authorization: `Bearer ${key}` } : {} });

describe('/healthz', () => {
  it('answers only {"status":"ok"}, with or without a key', async () => {
    for (const key of [undefined, server.adminKey, server.runtimeKey, 'trove-sk-wrong']) {
      const res = await get('/healthz', key);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('{"status":"ok"}');
    }
  });

  it('writes nothing to the data dir', async () => {
    const seen: string[] = [];
    const watcher: FSWatcher = watch(server.dataDir, { recursive: true }, (_event, name) => {
      // The database's own files may change with background work; a probe file would be anything else.
      if (name && !/trove\.db/.test(name)) seen.push(String(name));
    });
    try {
      for (let i = 0; i < 20; i++) expect((await get('/healthz')).status).toBe(200);
      for (let i = 0; i < 5; i++) expect((await get('/v1/admin/health', server.adminKey)).status).toBe(200);
      // inotify reports in order: once our own marker is seen, anything the probes did has been seen too.
      writeFileSync(`${server.dataDir}/marker`, 'x');
      for (let i = 0; i < 500 && !seen.includes('marker'); i++) await sleep(10);
      expect(seen.filter((n) => n !== 'marker')).toEqual([]);
      expect(seen).toContain('marker');
    } finally {
      watcher.close();
    }
  });
});

describe('/v1/admin/health', () => {
  it('gives an admin key the details', async () => {
    const res = await get('/v1/admin/health', server.adminKey);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown> & { disk: { free_bytes: number; total_bytes: number } };
    expect(Object.keys(body).sort()).toEqual(['cgroups', 'change_tracking', 'database', 'disk', 'exec', 'exec_fix', 'exec_reason', 'status', 'version', 'volume', 'warm_sandboxes']);
    const tracking = body.change_tracking as { mode: string; limits: string[]; max_per_command: number };
    expect(['fanotify', 'scan', 'off']).toContain(tracking.mode);
    expect(tracking.max_per_command).toBe(1000);
    // Only scan and off have limits to state.
    expect(tracking.limits.length > 0).toBe(tracking.mode !== 'fanotify');
    expect(body.warm_sandboxes).toEqual({ running: expect.any(Number), idle: expect.any(Number), max: 256, idle_ms: 300_000 });
    const cgroups = body.cgroups as { mode: string; controllers: string[]; missing: string[] } | null;
    if (cgroups !== null) {
      expect(Object.keys(cgroups).sort()).toEqual(['controllers', 'missing', 'mode']);
      expect(['v1', 'v2', 'none']).toContain(cgroups.mode);
    }
    expect(body).toMatchObject({ status: 'ok', database: 'ok', volume: 'ok' });
    expect(['bubblewrap', 'insecure', 'unavailable']).toContain(body.exec);
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.disk.total_bytes).toBeGreaterThan(0);
    expect(body.disk.free_bytes).toBeGreaterThan(0);
    expect(body.disk.free_bytes).toBeLessThanOrEqual(body.disk.total_bytes);
  });

  it('refuses workspace keys (403) and missing or wrong keys (401)', async () => {
    const ws = await get('/v1/admin/health', server.runtimeKey);
    expect(ws.status).toBe(403);
    expect(await ws.json()).toEqual({ detail: 'Health details need an admin key.', code: 'scope_forbidden' });
    for (const key of [undefined, 'trove-sk-wrong']) {
      const res = await get('/v1/admin/health', key);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: 'unauthorized' });
    }
  });

  it('is listed in /openapi.json', async () => {
    const doc = (await (await get('/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/healthz', '/v1/admin/health']));
  });
});

describe('an unusable data dir', () => {
  it('makes /healthz answer 503 without details, and the admin details say why', async () => {
    const moved = server.dataDir + '.moved';
    renameSync(server.dataDir, moved);
    try {
      const res = await get('/healthz');
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(await res.json()).toEqual({ status: 'unavailable', detail: 'The server cannot serve requests right now; retry shortly', code: 'unavailable' });

      const details = await get('/v1/admin/health', server.adminKey);
      expect(details.status).toBe(503);
      expect(await details.json()).toMatchObject({
        status: 'unavailable',
        volume: 'unwritable: ENOENT',
        disk: null,
        code: 'unavailable',
        detail: expect.stringContaining('volume unwritable: ENOENT'),
      });
    } finally {
      renameSync(moved, server.dataDir);
    }
    expect(await (await get('/healthz')).json()).toEqual({ status: 'ok' });
  });
});
