/** The MCP SDK's own client against the server's Streamable HTTP endpoint `/mcp`. */
import { describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { api } from '../../../test/helpers/server.js';
import { useServer } from '../../cli/test/helpers/session.js';
import { call, checkListings, exerciseTools } from './helpers/exercise.js';

const session = useServer();

async function connect(headers: Record<string, string>): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${session.server.baseUrl}/mcp`), {
    requestInit: { headers },
  });
  const client = new Client({ name: 'trove-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

describe('POST /mcp (Streamable HTTP, stateless)', () => {
  it('lists the tools and prompt, and every tool works in the X-Namespace namespace', async () => {
    const client = await connect({ authorization: `Bearer ${session.server.runtimeKey}`, 'x-namespace': 'mcp-http' });
    try {
      await checkListings(client);
      await exerciseTools(client);
    } finally {
      await client.close();
    }
    const res = await api(session.server, session.server.runtimeKey, 'mcp-http')('/files/notes/hello.md');
    expect(await res.text()).toBe('hello');
    // Tool calls are real API calls: they emit the same events.
    const events = await api(
      session.server,
      session.server.adminKey,
    )(`/v1/workspaces/${session.server.workspaceId}/events?namespace=mcp-http&types=file.written&limit=200`);
    const paths = ((await events.json()) as { events: { data: { path: string } }[] }).events.map((e) => e.data.path);
    expect(paths).toContain('workspace/notes/hello.md');
  });

  it('a namespace-locked key works without X-Namespace and is held to its namespace', async () => {
    const created = await api(session.server, session.server.adminKey)(
      `/v1/workspaces/${session.server.workspaceId}/keys`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'mcp-locked', namespace: 'locked-ns', admin: false }),
      },
    );
    const { api_key: key } = (await created.json()) as { api_key: string };
    const client = await connect({ authorization: `Bearer ${key}` });
    try {
      expect(await call(client, 'trove_write', { path: 'mine.txt', content: 'x' })).toEqual({
        text: 'wrote workspace/mine.txt (1 bytes)',
        isError: false,
      });
    } finally {
      await client.close();
    }
    expect((await api(session.server, session.server.runtimeKey, 'locked-ns')('/files/mine.txt')).status).toBe(200);
    await expect(connect({ authorization: `Bearer ${key}`, 'x-namespace': 'other' })).rejects.toThrow(/403|locked/);
  });

  it('rejects bad keys, admin keys and a missing namespace with the API’s own errors', async () => {
    const post = (headers: Record<string, string>) =>
      fetch(`${session.server.baseUrl}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
        }),
      });
    const none = await post({});
    expect(none.status).toBe(401);
    expect(((await none.json()) as { detail: string }).detail).toMatch(/API key/);
    const admin = await post({ authorization: `Bearer ${session.server.adminKey}`, 'x-namespace': 'a' });
    expect(admin.status).toBe(403);
    expect(await admin.json()).toMatchObject({ code: 'scope_forbidden' });
    const noNs = await post({ authorization: `Bearer ${session.server.runtimeKey}` });
    expect(noNs.status).toBe(400);
    expect(await noNs.json()).toMatchObject({ detail: 'X-Namespace header required' });
    const badNs = await post({ authorization: `Bearer ${session.server.runtimeKey}`, 'x-namespace': '..' });
    expect(badNs.status).toBe(400);
    const ok = await post({ authorization: `Bearer ${session.server.runtimeKey}`, 'x-namespace': 'a' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-request-id')).toMatch(/^req-/);
    expect(((await ok.json()) as { result: { serverInfo: { name: string } } }).result.serverInfo.name).toBe('trove');
  });

  it('GET and DELETE answer 405 (no sessions to stream to or end)', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(`${session.server.baseUrl}/mcp`, {
        method,
        headers: { authorization: `Bearer ${session.server.runtimeKey}` },
      });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      expect(((await res.json()) as { error: { code: number } }).error.code).toBe(-32000);
    }
  });

  it('a revoked key stops working between calls', async () => {
    const created = await api(session.server, session.server.adminKey)(
      `/v1/workspaces/${session.server.workspaceId}/keys`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'mcp-revoke', namespace: null, admin: false }),
      },
    );
    const { api_key: key, key_id: keyId } = (await created.json()) as { api_key: string; key_id: string };
    const client = await connect({ authorization: `Bearer ${key}`, 'x-namespace': 'rv' });
    try {
      expect((await call(client, 'trove_list', {})).isError).toBe(false);
      await api(session.server, session.server.adminKey)(`/v1/workspaces/${session.server.workspaceId}/keys/${keyId}`, {
        method: 'DELETE',
      });
      await expect(call(client, 'trove_list', {})).rejects.toThrow(/401|Invalid API key/);
    } finally {
      await client.close().catch(() => {});
    }
  });
});
