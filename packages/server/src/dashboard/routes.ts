/**
 * Serves the dashboard single-page app (packages/dashboard/dist, built by Vite) at /dashboard
 * through @fastify/static (content types, ETag/Last-Modified, conditional GET, ranges, and the
 * refusal of `..` and dot-files). The directory is the server's own build output, never a
 * tenant's: like any static server, this one follows a symlink placed in it by whoever installed
 * the server. Unknown extension-less paths fall back to index.html so
 * client-side routes survive reloads. Every response here carries a strict
 * Content-Security-Policy: the app talks only to this origin's API, runs only its own bundled
 * scripts, and shows images only from blob:/data: URLs it creates itself (file previews fetched
 * with the Authorization header).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface DashboardRoutesOptions {
  /** Absolute (or cwd-relative) path of the Vite build output holding index.html. */
  distDir: string;
}

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

// Vite content-hashes everything it emits under assets/, so those names never change meaning.
const IMMUTABLE = 'public, max-age=31536000, immutable';
// Everything else (index.html, favicon) is revalidated so a new build shows up on reload.
const REVALIDATE = 'no-cache';
const JSON_TYPE = 'application/json; charset=utf-8';

export async function dashboardRoutes(app: FastifyInstance, opts: DashboardRoutesOptions): Promise<void> {
  // A prefixed scope, so its not-found handler (the SPA fallback) covers /dashboard/* only.
  await app.register(
    async (scope) => {
      await dashboardScope(scope, path.resolve(opts.distDir));
    },
    { prefix: '/dashboard' },
  );
}

async function dashboardScope(scope: FastifyInstance, root: string): Promise<void> {
  const assets = path.join(root, 'assets') + path.sep;

  // Public: the page itself carries no data; the app asks for a key and sends it to the API.
  // This covers the routes @fastify/static adds below too.
  scope.addHook('onRoute', (route) => {
    route.config = { ...route.config, public: true };
  });

  // Applies to the dashboard's responses only, including its errors and its fallback.
  scope.addHook('onRequest', async (_req, reply) => {
    reply.headers(SECURITY_HEADERS);
    // The build may appear after the server started (npm run build), so check on every request.
    const index = await stat(path.join(root, 'index.html')).catch(() => null);
    if (!index?.isFile()) {
      return reply
        .code(503)
        .header('cache-control', 'no-store')
        .header('retry-after', '30')
        .type(JSON_TYPE)
        .send({ detail: 'Dashboard not built: run npm run build', code: 'unavailable' });
    }
  });

  await scope.register(fastifyStatic, {
    root,
    prefix: '/',
    // The directory itself is answered by the route below; dot-files (.env) are never served.
    index: false,
    dotfiles: 'ignore',
    cacheControl: false,
    setHeaders: (res, file) => {
      res.setHeader('cache-control', file.startsWith(assets) ? IMMUTABLE : REVALIDATE);
    },
  });

  const sendIndex = (_req: FastifyRequest, reply: FastifyReply) => reply.sendFile('index.html');
  scope.get('/', { schema: { hide: true } }, sendIndex);

  // What @fastify/static does not find: a client-side route (no extension) gets the app, a
  // missing file with an extension is a broken asset link and gets 404, not HTML that the
  // browser would then refuse as a script or stylesheet.
  scope.setNotFoundHandler((req, reply) => {
    const pathname = req.url.split('?')[0] ?? '';
    const last = pathname.slice(pathname.lastIndexOf('/') + 1);
    if ((req.method === 'GET' || req.method === 'HEAD') && path.extname(last) === '') return sendIndex(req, reply);
    return notFound(reply);
  });

  // @fastify/send refuses `..` with 403 and malformed paths with 400: for a client there is
  // simply nothing there. Anything else goes on to the app's error handler.
  scope.setErrorHandler((error: FastifyError, _req, reply) => {
    const status = error.statusCode ?? 500;
    if (status === 403 || status === 404) return notFound(reply);
    if (status >= 400 && status < 500) {
      return reply
        .code(status)
        .header('cache-control', 'no-store')
        .type(JSON_TYPE)
        .send({ detail: error.message, code: 'bad_request' });
    }
    throw error;
  });
}

function notFound(reply: FastifyReply) {
  return reply
    .code(404)
    .header('cache-control', 'no-store')
    .type(JSON_TYPE)
    .send({ detail: 'Not found', code: 'not_found' });
}
