/**
 * buildApp(config, deps) → a Fastify instance with every plugin and route
 * registered. It never listens (main.ts does), so tests can inject().
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import { newRequestId } from './ids.js';
import type { Config } from './config.js';
import { AppError } from './errors.js';
import type { AppContext } from './context.js';
import { registerErrorHandling, sendError } from './http/errors.js';
import { RateLimiter, registerAuth } from './http/auth.js';
import { registerSlowClients } from './http/slow-clients.js';
import { metaRoutes } from './meta/routes.js';
import { workspaceRoutes } from './workspaces/routes.js';
import { keyRoutes } from './auth/routes.js';
import { fileRoutes } from './files/routes.js';
import { eventRoutes } from './events/routes.js';
import { namespaceRoutes } from './namespaces/routes.js';
import { execRoutes } from './exec/routes.js';
import { dashboardRoutes } from './dashboard/routes.js';
import { fileURLToPath } from 'node:url';

export type AppDeps = AppContext;

export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      // Security: keys and secrets never reach a log line.
      redact: {
        paths: [
          'req.headers.authorization',
          'headers.authorization',
          '*.api_key',
          '*.admin_api_key',
          '*.signing_secret',
          '*.secret',
        ],
        censor: '[redacted]',
      },
    },
    genReqId: newRequestId,
    requestIdHeader: false,
    // On close, idle keep-alive sockets go at once; requests in flight finish (long-polls and SSE
    // streams are ended by preClose hooks; main.ts cuts whatever is left after a grace period).
    forceCloseConnections: 'idle',
    // One log line per request (on completion) instead of Fastify's two; the arrival is logged at debug.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 16 * 1024 * 1024,
    // Every phase of a request has its limit (http/slow-clients.ts says how they fit together): the head
    // (headersTimeout), a stalled body (the body idle timeout), the whole request (requestTimeout), a
    // connection where nothing moves while the client should act (connectionTimeout), an idle keep-alive.
    requestTimeout: config.timeouts.requestMs,
    connectionTimeout: config.timeouts.connectionMs,
    keepAliveTimeout: config.timeouts.keepAliveMs,
    http: { headersTimeout: config.timeouts.headersMs, requestTimeout: config.timeouts.requestMs },
    // The router's own refusals (a URL that is not valid percent-encoded UTF-8, an over-long parameter) in the
    // API's error shape, with the request id every response carries.
    frameworkErrors: (err, req, reply) => {
      reply.header('x-request-id', req.id);
      const detail =
        err.code === 'FST_ERR_BAD_URL'
          ? `URL is not valid percent-encoded UTF-8: ${req.url.split('?')[0]}`
          : err.message;
      sendError(reply, new AppError('bad_request', detail));
    },
  });

  // Query strings and headers are text, so they are coerced ("true" → true);
  // JSON bodies are not: `{"content": 5}` is a 422, not the string "5".
  const ajvText = new Ajv({
    coerceTypes: 'array',
    useDefaults: true,
    removeAdditional: true,
    allErrors: false,
    strict: false,
  });
  const ajvBody = new Ajv({
    coerceTypes: false,
    useDefaults: true,
    removeAdditional: true,
    allErrors: false,
    strict: false,
  });
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? ajvBody.compile(schema) : ajvText.compile(schema),
  );

  // The hooks every request runs are callback-style: an async hook costs a promise and a microtask each.
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    req.log.debug({ method: req.method, url: req.url }, 'incoming request');
    done();
  });
  // The access log: one line per request, written without redaction (~6 µs of a 4 KiB GET's ~60 µs). Its
  // fields are fixed and hold no secrets; every other log call keeps the redaction configured above.
  const accessLog = app.log.child({}, { redact: { paths: [], censor: '[redacted]' } });
  app.addHook('onResponse', (req, reply, done) => {
    accessLog.info(
      {
        reqId: req.id,
        method: req.method,
        url: req.url,
        statusCode: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
      },
      'request completed',
    );
    done();
  });
  // Shutting down: answer what is in flight, and tell keep-alive clients not to reuse the connection,
  // so the server is not left waiting for sockets that the clients would keep open.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    deps.events.endWaits();
  });
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  // An empty body with a JSON content type means "no body" (clients send
  // `Content-Type: application/json` on body-less DELETE/POST calls).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new AppError('bad_request', `Malformed JSON body: ${(err as Error).message}`), undefined);
    }
  });

  registerErrorHandling(app);
  // Before auth: a body is watched, and a refused one closed, whatever the key.
  registerSlowClients(app, { bodyIdleTimeoutMs: config.timeouts.bodyIdleMs });
  const limiter = config.rateLimit.perKeyPerMinute > 0 ? new RateLimiter(config.rateLimit.perKeyPerMinute) : null;
  registerAuth(app, deps.auth, limiter);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Trove API',
        version: deps.version,
        description:
          'Managed POSIX filesystem for AI agents. Wire contract: docs/protocol.md. Errors are {"detail": string, "code": string}.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'trove-sk-… API key' } },
      },
      security: [{ bearer: [] }],
    },
    // find-my-way's wildcard is docs/protocol.md's {path}.
    transform: ({ schema, url }) => ({ schema: schema as never, url: url.replace(/\/\*$/, '/{path}') }),
  });

  await app.register(metaRoutes, deps);
  await app.register(workspaceRoutes, deps);
  await app.register(keyRoutes, deps);
  await app.register(fileRoutes, deps);
  await app.register(eventRoutes, deps);
  await app.register(namespaceRoutes, deps);
  await app.register(execRoutes, deps);
  for (const extra of deps.extraRoutes) await app.register(extra, deps);
  await app.register(dashboardRoutes, {
    // packages/server/dist/app.js → packages/dashboard/dist
    distDir: config.http.dashboardDir ?? fileURLToPath(new URL('../../dashboard/dist', import.meta.url)),
  });
  app.get('/', { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
    reply.redirect('/dashboard/'),
  );
  return app;
}
