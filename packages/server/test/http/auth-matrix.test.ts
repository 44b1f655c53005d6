/**
 * Authorization matrix, in-process: every authenticated route × {no key, bad key, revoked key,
 * admin, workspace key, key locked to ns A} × {ns A, ns B, no header}.
 * Each cell asserts the exact status. (The SSE stream is read over a loopback port: inject() waits for an end.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type Method, type TestApp } from '../helpers/app.js';

type KeyKind = 'none' | 'bad' | 'revoked' | 'admin' | 'workspace' | 'nsA';
type NsKind = 'A' | 'B' | 'none';
const KEYS: KeyKind[] = ['none', 'bad', 'revoked', 'admin', 'workspace', 'nsA'];
const NSS: NsKind[] = ['A', 'B', 'none'];

let t: TestApp;
const keys: Record<KeyKind, string | null> = {
  none: null,
  bad: 'trove-sk-not-a-real-key-000000000000',
  revoked: '',
  admin: '',
  workspace: '',
  nsA: '',
};
let cell = 0;

async function call(key: KeyKind, ns: NsKind, method: string, path: string, body?: unknown, raw?: string) {
  const headers: Record<string, string> = {};
  const k = keys[key];
  if (k) headers.authorization = `Bearer ${k}`;
  if (ns !== 'none') headers['x-namespace'] = ns === 'A' ? 'ns-a' : 'ns-b';
  const res = await t.request(method as Method, path, { headers, body: raw ?? body });
  if (res.statusCode >= 400) {
    // Every error is JSON {"detail": string}.
    const parsed = res.json<{ detail: unknown }>();
    expect(typeof parsed.detail).toBe('string');
  }
  return res.statusCode;
}

async function adminJson(method: string, path: string, body?: unknown) {
  const res = await t.request(method as Method, path, { key: t.adminKey, body });
  return res.json<Record<string, string>>();
}

async function runtimeJson(ns: string, method: string, path: string, body?: unknown) {
  const res = await t.request(method as Method, path, { key: t.runtimeKey, namespace: ns, body });
  expect(res.statusCode, `${method} ${path}`).toBeLessThan(300);
  return res.json<Record<string, string>>();
}

/** The namespace a (key, ns) cell acts on when it is allowed to: the header's, or the locked key's own. */
function targetNs(key: KeyKind, ns: NsKind): 'ns-a' | 'ns-b' {
  if (ns === 'B' && key !== 'nsA') return 'ns-b';
  return 'ns-a';
}

/** Status of a request whose body may be an endless stream (SSE), over the loopback port: read the head only, then hang up. */
async function statusOnly(
  key: KeyKind,
  ns: NsKind,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
) {
  const k = keys[key];
  if (k) headers.authorization = `Bearer ${k}`;
  if (ns !== 'none') headers['x-namespace'] = ns === 'A' ? 'ns-a' : 'ns-b';
  const ctl = new AbortController();
  const res = await fetch((await t.listen()) + path, { method, headers, body, signal: ctl.signal });
  if (res.status >= 400) {
    const parsed = (await res.json()) as { detail: unknown };
    expect(typeof parsed.detail).toBe('string');
  } else {
    ctl.abort();
  }
  return res.status;
}

const MCP_INIT = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'matrix', version: '0' } },
});

async function seed(ns: 'ns-a' | 'ns-b', path: string) {
  const res = await t.request('POST', '/write', { key: t.runtimeKey, namespace: ns, body: { path, content: 'seed' } });
  expect(res.statusCode).toBe(200);
}

beforeAll(async () => {
  t = await startTestApp({ exec: true, env: { TROVE_WEBHOOK_ALLOW_PRIVATE: '1' } });
  keys.admin = t.adminKey;
  keys.workspace = t.runtimeKey;
  const ws = t.workspaceId;
  keys.nsA = (await adminJson('POST', `/v1/workspaces/${ws}/keys`, { name: 'locked', namespace: 'ns-a' })).api_key!;
  const revoked = await adminJson('POST', `/v1/workspaces/${ws}/keys`, { name: 'gone', namespace: null });
  keys.revoked = revoked.api_key!;
  await adminJson('DELETE', `/v1/workspaces/${ws}/keys/${revoked.key_id}`);
  await seed('ns-a', 'seed.txt');
  await seed('ns-b', 'seed.txt');
});

afterAll(() => t?.close());

/** Expected status of a runtime endpoint for a (key, ns) cell, given the success status. */
function runtimeExpect(key: KeyKind, ns: NsKind, ok: number): number {
  if (key === 'none' || key === 'bad' || key === 'revoked') return 401;
  if (key === 'admin') return 403;
  if (key === 'workspace') return ns === 'none' ? 400 : ok;
  return ns === 'B' ? 403 : ok; // nsA: own namespace, or header missing → own
}

function managementExpect(key: KeyKind, adminOnly: boolean, ok: number): number {
  if (key === 'none' || key === 'bad' || key === 'revoked') return 401;
  if (adminOnly && key !== 'admin') return 403;
  return ok;
}

describe('runtime endpoints', () => {
  const routes: Array<{ name: string; ok: number; run: (k: KeyKind, n: NsKind) => Promise<number> }> = [
    {
      name: 'POST /write',
      ok: 200,
      run: (k, n) => call(k, n, 'POST', '/write', { path: `m/w${cell++}.txt`, content: 'x' }),
    },
    {
      name: 'PUT /files/{path}',
      ok: 200,
      run: (k, n) => call(k, n, 'PUT', `/files/m/u${cell++}.bin`, undefined, 'bytes'),
    },
    { name: 'GET /files/{path}', ok: 200, run: (k, n) => call(k, n, 'GET', '/files/seed.txt') },
    { name: 'GET /v1/files', ok: 200, run: (k, n) => call(k, n, 'GET', '/v1/files?path=workspace/') },
    {
      name: 'GET /v1/files/content',
      ok: 200,
      run: (k, n) => call(k, n, 'GET', '/v1/files/content?path=workspace/seed.txt'),
    },
    {
      name: 'POST /delete',
      ok: 200,
      run: async (k, n) => {
        const p = `d${cell++}.txt`;
        await seed('ns-a', p);
        await seed('ns-b', p);
        return call(k, n, 'POST', '/delete', { path: p });
      },
    },
    { name: 'POST /v1/exec', ok: 200, run: (k, n) => call(k, n, 'POST', '/v1/exec', { command: 'true' }) },
    { name: 'POST /exec', ok: 200, run: (k, n) => call(k, n, 'POST', '/exec', { command: 'echo hi' }) },
    { name: 'GET /v1/snapshots', ok: 200, run: (k, n) => call(k, n, 'GET', '/v1/snapshots') },
    {
      name: 'POST /v1/snapshots',
      ok: 200,
      run: (k, n) => call(k, n, 'POST', '/v1/snapshots', { label: `m${cell++}` }),
    },
    {
      name: 'POST /v1/snapshots/{id}/restore',
      ok: 200,
      run: async (k, n) => {
        const snap = await runtimeJson(targetNs(k, n), 'POST', '/v1/snapshots', { label: null });
        return call(k, n, 'POST', `/v1/snapshots/${snap.snapshot_id}/restore`);
      },
    },
    {
      name: 'DELETE /v1/snapshots/{id}',
      ok: 200,
      run: async (k, n) => {
        const snap = await runtimeJson(targetNs(k, n), 'POST', '/v1/snapshots', { label: null });
        return call(k, n, 'DELETE', `/v1/snapshots/${snap.snapshot_id}`);
      },
    },
    {
      name: 'POST /mcp',
      ok: 200,
      run: (k, n) =>
        statusOnly(
          k,
          n,
          'POST',
          '/mcp',
          { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          MCP_INIT,
        ),
    },
  ];
  for (const route of routes) {
    for (const key of KEYS) {
      for (const ns of NSS) {
        it(`${route.name} · key=${key} · ns=${ns}`, async () => {
          expect(await route.run(key, ns)).toBe(runtimeExpect(key, ns, route.ok));
        });
      }
    }
  }
});

describe('management endpoints', () => {
  const ws = () => t.workspaceId;
  // One endpoint (to a closed port) with one recorded delivery, for the per-webhook routes.
  let hookId = '';
  let deliveryId = '';
  const hook = () => hookId;
  const delivery = () => deliveryId;
  beforeAll(async () => {
    const created = await adminJson('POST', `/v1/workspaces/${ws()}/webhooks`, {
      url: 'http://127.0.0.1:9/hook',
      events: ['file.written'],
    });
    hookId = created.webhook_id!;
    await seed('ns-a', 'for-delivery.txt');
    for (let i = 0; i < 100 && !deliveryId; i++) {
      const res = await t.request('GET', `/v1/workspaces/${ws()}/webhooks/${hookId}/deliveries`, { key: t.adminKey });
      const body = res.json<{ deliveries: Array<{ delivery_id: string }> }>();
      deliveryId = body.deliveries[0]?.delivery_id ?? '';
      if (!deliveryId) await new Promise((r) => setTimeout(r, 50));
    }
    expect(deliveryId).not.toBe('');
  });
  const routes: Array<{
    name: string;
    adminOnly: boolean;
    ok: number;
    run: (k: KeyKind, n: NsKind) => Promise<number>;
  }> = [
    { name: 'GET /v1/me', adminOnly: false, ok: 200, run: (k, n) => call(k, n, 'GET', '/v1/me') },
    { name: 'GET keys', adminOnly: true, ok: 200, run: (k, n) => call(k, n, 'GET', `/v1/workspaces/${ws()}/keys`) },
    {
      name: 'POST keys',
      adminOnly: true,
      ok: 201,
      run: (k, n) => call(k, n, 'POST', `/v1/workspaces/${ws()}/keys`, { name: `k${cell++}`, namespace: null }),
    },
    {
      name: 'DELETE keys/{id}',
      adminOnly: true,
      ok: 200,
      run: async (k, n) => {
        const created = await adminJson('POST', `/v1/workspaces/${ws()}/keys`, { name: `r${cell++}`, namespace: null });
        return call(k, n, 'DELETE', `/v1/workspaces/${ws()}/keys/${created.key_id}`);
      },
    },
    {
      name: 'GET events',
      adminOnly: false,
      ok: 200,
      run: (k, n) => call(k, n, 'GET', `/v1/workspaces/${ws()}/events`),
    },
    {
      name: 'GET namespaces',
      adminOnly: false,
      ok: 200,
      run: (k, n) => call(k, n, 'GET', `/v1/workspaces/${ws()}/namespaces`),
    },
    {
      name: 'DELETE namespaces/{ns}',
      adminOnly: true,
      ok: 200,
      run: async (k, n) => {
        const doomed = `gone-${cell++}`;
        await runtimeJson(doomed, 'POST', '/write', { path: 'x.txt', content: 'x' });
        return call(k, n, 'DELETE', `/v1/workspaces/${ws()}/namespaces/${doomed}`);
      },
    },
    {
      name: 'GET webhooks',
      adminOnly: true,
      ok: 200,
      run: (k, n) => call(k, n, 'GET', `/v1/workspaces/${ws()}/webhooks`),
    },
    {
      name: 'POST webhooks',
      adminOnly: true,
      ok: 201,
      run: (k, n) =>
        call(k, n, 'POST', `/v1/workspaces/${ws()}/webhooks`, { url: `http://127.0.0.1:9/m${cell++}`, events: ['*'] }),
    },
    {
      name: 'GET webhooks/{id}',
      adminOnly: true,
      ok: 200,
      run: (k, n) => call(k, n, 'GET', `/v1/workspaces/${ws()}/webhooks/${hook()}`),
    },
    {
      name: 'PATCH webhooks/{id}',
      adminOnly: true,
      ok: 200,
      run: (k, n) => call(k, n, 'PATCH', `/v1/workspaces/${ws()}/webhooks/${hook()}`, { description: `d${cell++}` }),
    },
    {
      name: 'DELETE webhooks/{id}',
      adminOnly: true,
      ok: 200,
      run: async (k, n) => {
        const created = await adminJson('POST', `/v1/workspaces/${ws()}/webhooks`, {
          url: 'http://127.0.0.1:9/x',
          events: ['*'],
        });
        return call(k, n, 'DELETE', `/v1/workspaces/${ws()}/webhooks/${created.webhook_id}`);
      },
    },
    {
      name: 'POST webhooks/{id}/test',
      adminOnly: true,
      ok: 200,
      run: (k, n) => call(k, n, 'POST', `/v1/workspaces/${ws()}/webhooks/${hook()}/test`),
    },
    {
      name: 'GET webhooks/{id}/deliveries',
      adminOnly: true,
      ok: 200,
      run: (k, n) => call(k, n, 'GET', `/v1/workspaces/${ws()}/webhooks/${hook()}/deliveries`),
    },
    {
      name: 'GET webhooks/{id}/deliveries/{id}',
      adminOnly: true,
      ok: 200,
      run: (k, n) => call(k, n, 'GET', `/v1/workspaces/${ws()}/webhooks/${hook()}/deliveries/${delivery()}`),
    },
    {
      name: 'POST webhooks/{id}/deliveries/{id}/resend',
      adminOnly: true,
      ok: 200,
      run: (k, n) => call(k, n, 'POST', `/v1/workspaces/${ws()}/webhooks/${hook()}/deliveries/${delivery()}/resend`),
    },
    // Any key of the workspace may follow the stream (a locked key sees only its namespace).
    {
      name: 'GET webhooks/stream',
      adminOnly: false,
      ok: 200,
      run: (k, n) => statusOnly(k, n, 'GET', `/v1/workspaces/${ws()}/webhooks/stream`),
    },
  ];
  for (const route of routes) {
    for (const key of KEYS) {
      for (const ns of NSS) {
        it(`${route.name} · key=${key} · ns=${ns}`, async () => {
          expect(await route.run(key, ns)).toBe(managementExpect(key, route.adminOnly, route.ok));
        });
      }
    }
  }

  it('another workspace in the path is 404 for every key', async () => {
    for (const key of ['admin', 'workspace', 'nsA'] as KeyKind[]) {
      expect(await call(key, 'none', 'GET', '/v1/workspaces/ws-0000000000000000/events')).toBe(404);
      expect(await call(key, 'none', 'GET', '/v1/workspaces/ws-0000000000000000/keys')).toBe(404);
    }
  });

  it('a namespace-locked key sees only its namespace in events', async () => {
    const res = await t.request('GET', `/v1/workspaces/${ws()}/events?limit=200`, { key: keys.nsA });
    const body = res.json<{ events: Array<{ namespace: string | null }> }>();
    expect(body.events.length).toBeGreaterThan(0);
    expect(body.events.every((e) => e.namespace === 'ns-a')).toBe(true);
    expect(await call('nsA', 'none', 'GET', `/v1/workspaces/${ws()}/events?namespace=ns-b`)).toBe(403);
  });

  it('exact details for scope errors', async () => {
    const res = await t.request('GET', `/v1/workspaces/${ws()}/keys`, { key: keys.workspace });
    expect(res.json()).toEqual({ detail: 'Workspace keys cannot manage keys.', code: 'scope_forbidden' });
    const r2 = await t.request('GET', '/v1/files', { key: keys.workspace });
    expect(r2.json()).toEqual({ detail: 'X-Namespace header required', code: 'namespace_required' });
    const r3 = await t.request('GET', '/v1/me', { key: 'nope' });
    expect(r3.json()).toEqual({ detail: 'Invalid API key', code: 'unauthorized' });
  });
});
