/**
 * mcp/routes.ts: MCP over Streamable HTTP at `/mcp`, in-process: a stateless JSON-RPC POST (its tools call back
 * into the same app), 405 for GET and DELETE, and the API's own refusals before any MCP traffic.
 * The tools themselves are tested in packages/mcp.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';

const ACCEPT = 'application/json, text/event-stream';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.close());

const rpc = (key: string | null, namespace: string | undefined, id: number, method: string, params: object = {}) =>
  t.request('POST', '/mcp', {
    key,
    namespace,
    headers: { accept: ACCEPT },
    body: { jsonrpc: '2.0', id, method, params },
  });

describe('POST /mcp', () => {
  it('initializes, lists the tools and calls one in the X-Namespace namespace', async () => {
    const init = await rpc(t.runtimeKey, 'mcp-ns', 1, 'initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'route-test', version: '0' },
    });
    expect(init.statusCode).toBe(200);
    expect(init.headers['x-request-id']).toMatch(/\S/);
    expect(init.json()).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: { version: t.ctx.version } } });

    const list = await rpc(t.runtimeKey, 'mcp-ns', 2, 'tools/list');
    const tools = list.json<{ result: { tools: Array<{ name: string }> } }>().result.tools.map((x) => x.name);
    expect(tools).toEqual(expect.arrayContaining(['trove_write', 'trove_read']));

    const write = await rpc(t.runtimeKey, 'mcp-ns', 3, 'tools/call', {
      name: 'trove_write',
      arguments: { path: 'from-mcp.txt', content: 'hi' },
    });
    expect(write.statusCode).toBe(200);
    expect(write.json<{ result: { isError?: boolean } }>().result.isError).toBeFalsy();
    expect((await t.as(t.runtimeKey, 'mcp-ns').get('/files/from-mcp.txt')).body).toBe('hi');
  });

  it('refuses missing keys (401), admin keys (403), no namespace (400) and another namespace (403) with the API errors', async () => {
    const locked = await t.createKey({ namespace: 'mcp-ns' });
    const cases: Array<[string | null, string | undefined, number, object]> = [
      [null, 'mcp-ns', 401, { detail: 'Invalid API key', code: 'unauthorized' }],
      ['trove-sk-wrong', 'mcp-ns', 401, { detail: 'Invalid API key', code: 'unauthorized' }],
      [
        t.adminKey,
        'mcp-ns',
        403,
        { detail: 'Admin keys cannot use runtime endpoints; use a workspace key', code: 'scope_forbidden' },
      ],
      [t.runtimeKey, undefined, 400, { detail: 'X-Namespace header required', code: 'namespace_required' }],
      [
        locked.api_key,
        'other',
        403,
        { detail: 'This key is locked to namespace "mcp-ns"', code: 'namespace_forbidden' },
      ],
    ];
    for (const [key, ns, status, error] of cases) {
      const res = await rpc(key, ns, 1, 'tools/list');
      expect([res.statusCode, res.json()]).toEqual([status, error]);
    }
  });
});

describe('GET and DELETE /mcp', () => {
  it('answer 405 with Allow: POST (a stateless endpoint has no session)', async () => {
    for (const method of ['GET', 'DELETE'] as const) {
      const res = await t.request(method, '/mcp', { key: t.runtimeKey, namespace: 'mcp-ns' });
      expect(res.statusCode).toBe(405);
      expect(res.headers.allow).toBe('POST');
      expect(res.json()).toEqual({
        jsonrpc: '2.0',
        error: { code: -32000, message: 'Method not allowed: this MCP endpoint is stateless; use POST.' },
        id: null,
      });
    }
    const none = await t.request('GET', '/mcp');
    expect([none.statusCode, none.json()]).toEqual([401, { detail: 'Invalid API key', code: 'unauthorized' }]);
  });
});
