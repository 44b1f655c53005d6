/**
 * Serves the dashboard single-page app (packages/dashboard/dist, built by Vite) at /dashboard.
 * Unknown extension-less paths fall back to index.html so client-side routes survive reloads.
 * Every response here carries a strict Content-Security-Policy: the app talks only to this
 * origin's API, runs only its own bundled scripts, and shows images only from blob:/data: URLs
 * it creates itself (file previews fetched with the Authorization header).
 */
import { createReadStream, type Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

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

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
};

// Vite content-hashes everything it emits under assets/, so those names never change meaning.
const IMMUTABLE = 'public, max-age=31536000, immutable';
// Everything else (index.html, favicon) is revalidated so a new build shows up on reload.
const REVALIDATE = 'no-cache';

export async function dashboardRoutes(app: FastifyInstance, opts: DashboardRoutesOptions): Promise<void> {
  const root = path.resolve(opts.distDir);

  // Encapsulated in this plugin: applies to the dashboard routes only, including their errors.
  app.addHook('onRequest', async (_req, reply) => {
    reply.headers(SECURITY_HEADERS);
  });

  const handler = (req: FastifyRequest, reply: FastifyReply) => {
    const rest = (req.params as { '*'?: string })['*'] ?? '';
    return serve(root, rest, req, reply);
  };
  // Public: the page itself carries no data; the app asks for a key and sends it to the API.
  // Hidden from the OpenAPI document, which describes the API only.
  const route = { config: { public: true }, schema: { hide: true } };
  app.get('/dashboard', route, handler);
  app.get('/dashboard/*', route, handler);
}

async function serve(root: string, rest: string, req: FastifyRequest, reply: FastifyReply) {
  // The build may appear after the server started (npm run build), so check on every request.
  let rootReal: string;
  let indexStats: Stats;
  try {
    rootReal = await realpath(root);
    indexStats = await stat(path.join(rootReal, 'index.html'));
    if (!indexStats.isFile()) throw new Error('index.html is not a file');
  } catch {
    return reply
      .code(503)
      .header('cache-control', 'no-store')
      .header('retry-after', '30')
      .type('application/json; charset=utf-8')
      .send({ detail: 'Dashboard not built: run npm run build', code: 'unavailable' });
  }
  const sendIndex = () => sendFile(req, reply, path.join(rootReal, 'index.html'), indexStats, REVALIDATE);

  // Security: the wildcard arrives percent-decoded, so "%2e%2e%2f" is already "../" here.
  // Reject NUL, backslashes, "."/".." and dot-files segment by segment instead of trying to
  // normalise them; nothing the build emits needs any of these.
  const segments = rest.split('/').filter((s) => s !== '');
  if (segments.length === 0) return sendIndex();
  if (rest.includes('\0') || segments.some((s) => s.startsWith('.') || s.includes('\\'))) {
    return notFound(reply);
  }
  const candidate = path.resolve(rootReal, ...segments);
  // Security: containment via path.relative, not startsWith (/dist vs /dist-evil).
  if (!isInside(rootReal, candidate)) return notFound(reply);

  let target: string | null = null;
  try {
    // Security: resolve symlinks and check again, so a link inside dist cannot point outside it.
    const real = await realpath(candidate);
    if (isInside(rootReal, real)) target = real;
  } catch {
    target = null;
  }
  if (target) {
    const st = await stat(target).catch(() => null);
    if (st?.isFile()) {
      const cache = segments[0] === 'assets' ? IMMUTABLE : REVALIDATE;
      return sendFile(req, reply, target, st, cache);
    }
  }
  // A missing file with an extension is a broken asset link: answer 404, not HTML that the
  // browser would then refuse as a script or stylesheet. Anything else is a client route.
  if (path.extname(segments[segments.length - 1]!) !== '') return notFound(reply);
  return sendIndex();
}

function isInside(root: string, target: string): boolean {
  const rel = path.relative(root, target);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function notFound(reply: FastifyReply) {
  return reply
    .code(404)
    .header('cache-control', 'no-store')
    .type('application/json; charset=utf-8')
    .send({ detail: 'Not found', code: 'not_found' });
}

function sendFile(req: FastifyRequest, reply: FastifyReply, file: string, st: Stats, cache: string) {
  const etag = `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  reply
    .header('cache-control', cache)
    .header('etag', etag)
    .header('last-modified', st.mtime.toUTCString())
    .type(CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream');
  const inm = req.headers['if-none-match'];
  if (inm && inm.split(',').some((t) => t.trim() === etag)) return reply.code(304).send();
  reply.header('content-length', st.size);
  return reply.send(createReadStream(file));
}
