/**
 * MCP over Streamable HTTP at `/mcp` (ours): the same tools as `trove mcp serve`,
 * so an agent host needs only a URL and a key. Stateless: every POST builds a
 * fresh MCP server for the caller's key and namespace, whose tools call back
 * into this same app through `app.inject` — so each tool call is authenticated,
 * scoped, rate-limited and evented exactly like the HTTP API it mirrors.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext, RoutePlugin } from '../context.js';
import { AppError } from '../errors.js';
import { runtimeNamespace } from '../auth/service.js';

/**
 * The MCP SDK, the MCP server's tools and the client they call, loaded at the first `/mcp` request: about
 * 8 MiB of live heap that a server nobody reaches over MCP does not carry (and that V8's heap grows in
 * proportion to before it collects).
 */
let modules: Promise<{
  StreamableHTTPServerTransport: typeof import('@modelcontextprotocol/sdk/server/streamableHttp.js').StreamableHTTPServerTransport;
  createTroveMcpServer: typeof import('trove-mcp').createTroveMcpServer;
  TroveClient: typeof import('trove-sdk').TroveClient;
}> | null = null;

function loadMcp(): NonNullable<typeof modules> {
  modules ??= Promise.all([
    import('@modelcontextprotocol/sdk/server/streamableHttp.js'),
    import('trove-mcp'),
    import('trove-sdk'),
  ]).then(([http, mcp, sdk]) => ({
    StreamableHTTPServerTransport: http.StreamableHTTPServerTransport,
    createTroveMcpServer: mcp.createTroveMcpServer,
    TroveClient: sdk.TroveClient,
  }));
  // A failed load (a broken install) is retried by the next request rather than remembered.
  modules.catch(() => (modules = null));
  return modules;
}

/** Origin of the loopback client's URLs; only the path and query reach `inject`. */
const LOOPBACK_ORIGIN = 'http://trove.loopback';

export const mcpRoutes: RoutePlugin = async (app: FastifyInstance, deps: AppContext) => {
  app.post(
    '/mcp',
    {
      schema: {
        summary: 'MCP over Streamable HTTP (stateless JSON-RPC; X-Namespace as for runtime endpoints)',
        tags: ['mcp'],
        headers: { type: 'object', properties: { 'x-namespace': { type: 'string' } } },
      },
    },
    async (req, reply) => {
      // Scope and namespace are settled before any MCP traffic, with the API's own errors.
      const namespace = runtimeNamespace(req.auth, req.headers['x-namespace']);
      const { StreamableHTTPServerTransport, createTroveMcpServer, TroveClient } = await loadMcp();
      const client = new TroveClient({
        apiKey: bearerKey(req),
        namespace,
        workspaceId: req.auth.workspaceId,
        baseUrl: LOOPBACK_ORIGIN,
        fetch: injectFetch(app, req),
        // A tool call is one attempt; the agent sees the error and decides.
        maxRetries: 0,
        timeoutMs: deps.config.exec.timeoutMs + 30_000,
      });
      const server = createTroveMcpServer(client, { version: deps.version });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      reply.hijack();
      reply.raw.setHeader('x-request-id', req.id);
      reply.raw.on('close', () => {
        void transport.close().catch(() => {});
        void server.close().catch(() => {});
      });
      try {
        await server.connect(transport);
        await transport.handleRequest(req.raw, reply.raw, req.body);
      } catch (err) {
        req.log.error({ err }, 'mcp request failed');
        if (!reply.raw.headersSent) {
          reply.raw.writeHead(500, { 'content-type': 'application/json' });
          reply.raw.end(
            JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }),
          );
        }
      }
    },
  );

  // Stateless: there is no session to stream to (GET) or to end (DELETE). MCP clients
  // read 405 as "this server has no standalone SSE stream" and carry on with POST.
  const notAllowed = async (_req: FastifyRequest, reply: import('fastify').FastifyReply) =>
    reply
      .code(405)
      .header('allow', 'POST')
      .send({
        jsonrpc: '2.0',
        error: { code: -32000, message: 'Method not allowed: this MCP endpoint is stateless; use POST.' },
        id: null,
      });
  app.get('/mcp', { schema: { summary: 'Not supported (stateless MCP endpoint): 405', tags: ['mcp'] } }, notAllowed);
  app.delete('/mcp', { schema: { summary: 'Not supported (stateless MCP endpoint): 405', tags: ['mcp'] } }, notAllowed);
};

function bearerKey(req: FastifyRequest): string {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  // The auth hook has already accepted this header, so this cannot fail for a routed request.
  if (!m) throw new AppError('unauthorized', 'Invalid API key');
  return m[1]!;
}

/** A fetch that answers from this app in-process, carrying the caller's key, request id and address. */
function injectFetch(app: FastifyInstance, outer: FastifyRequest): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const payload = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
    const res = await app.inject({
      method: request.method as 'GET',
      url: url.pathname + url.search,
      headers,
      payload,
      remoteAddress: outer.ip,
    });
    const out = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      if (value === undefined || name === 'transfer-encoding' || name === 'set-cookie') continue;
      for (const v of Array.isArray(value) ? value : [value]) out.append(name, String(v));
    }
    const empty = res.statusCode === 204 || res.statusCode === 304 || request.method === 'HEAD';
    return new Response(empty ? null : new Uint8Array(res.rawPayload), { status: res.statusCode, headers: out });
  };
}
