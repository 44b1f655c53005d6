/**
 * dashboard/routes.ts: the /dashboard static route (@fastify/static): content types, caching, security headers, SPA
 * fallback, the "not built" answer and the path-traversal attack list. Built with inject(), no
 * listening.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DASHBOARD_CSP, dashboardRoutes } from '../../src/dashboard/routes.js';

const SECRET = 'top-secret-outside-dist';
let base: string;
let dist: string;
let app: FastifyInstance;

function expectSecurityHeaders(headers: Record<string, unknown>) {
  expect(headers['content-security-policy']).toBe(DASHBOARD_CSP);
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['referrer-policy']).toBe('no-referrer');
  expect(headers['x-frame-options']).toBe('DENY');
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'trove-dash-'));
  dist = join(base, 'dist');
  mkdirSync(join(dist, 'assets'), { recursive: true });
  writeFileSync(join(dist, 'index.html'), '<!doctype html><title>Trove</title><div id="root"></div>');
  writeFileSync(join(dist, 'assets', 'index-abc123.js'), 'console.log("app")');
  writeFileSync(join(dist, 'assets', 'index-abc123.css'), 'body{}');
  writeFileSync(join(dist, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  writeFileSync(join(dist, '.env'), SECRET);
  // Things a traversal would reach: the parent, and a sibling whose name shares the prefix.
  writeFileSync(join(base, 'secret.txt'), SECRET);
  mkdirSync(join(base, 'dist-evil'));
  writeFileSync(join(base, 'dist-evil', 'secret.txt'), SECRET);

  app = Fastify();
  // As the app answers URLs outside /dashboard (a "/dashboard/../x" is "/x" once parsed).
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ detail: `Not found: ${req.method} ${req.url}`, code: 'not_found' }),
  );
  await app.register(dashboardRoutes, { distDir: dist });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  rmSync(base, { recursive: true, force: true });
});

describe('dashboard routes', () => {
  it('serves index.html at /dashboard and /dashboard/ with security headers and revalidation', async () => {
    for (const url of ['/dashboard', '/dashboard/']) {
      const res = await app.inject({ url });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.body).toContain('<div id="root">');
      expectSecurityHeaders(res.headers);
    }
  });

  it('has a CSP without inline scripts that only connects to its own origin', () => {
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    expect(DASHBOARD_CSP).not.toContain('unsafe-inline');
    expect(DASHBOARD_CSP).not.toContain('unsafe-eval');
    expect(DASHBOARD_CSP).toContain("connect-src 'self'");
    expect(DASHBOARD_CSP).toContain("img-src 'self' blob: data:");
    expect(DASHBOARD_CSP).toContain("frame-ancestors 'none'");
  });

  it('serves hashed assets with their content type and a long immutable cache', async () => {
    const js = await app.inject({ url: '/dashboard/assets/index-abc123.js' });
    expect(js.statusCode).toBe(200);
    // @fastify/send's MIME table: application/javascript, which browsers run as a module script.
    expect(js.headers['content-type']).toBe('application/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.body).toBe('console.log("app")');
    expectSecurityHeaders(js.headers);

    const css = await app.inject({ url: '/dashboard/assets/index-abc123.css' });
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');

    const svg = await app.inject({ url: '/dashboard/favicon.svg' });
    expect(svg.statusCode).toBe(200);
    expect(svg.headers['content-type']).toBe('image/svg+xml');
    expect(svg.headers['cache-control']).toBe('no-cache');
  });

  it('answers HEAD and conditional requests', async () => {
    const head = await app.inject({ method: 'HEAD', url: '/dashboard/assets/index-abc123.js' });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
    const first = await app.inject({ url: '/dashboard/' });
    const etag = first.headers.etag as string;
    expect(etag).toBeTruthy();
    const again = await app.inject({ url: '/dashboard/', headers: { 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    expectSecurityHeaders(again.headers);
  });

  it('falls back to index.html for client-side routes', async () => {
    for (const url of ['/dashboard/keys', '/dashboard/files?ns=default&path=workspace/a.txt', '/dashboard/events/']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.body).toContain('<div id="root">');
    }
  });

  it('answers 404 JSON for a missing file with an extension', async () => {
    const res = await app.inject({ url: '/dashboard/assets/index-gone.js' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ detail: 'Not found', code: 'not_found' });
    expectSecurityHeaders(res.headers);
  });

  it('answers only GET and HEAD: other methods get 404 JSON, not the app', async () => {
    for (const url of ['/dashboard/keys', '/dashboard/assets/index-abc123.js']) {
      const res = await app.inject({ method: 'POST', url, payload: {} });
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toEqual({ detail: 'Not found', code: 'not_found' });
    }
  });

  it('never serves anything outside the build directory', async () => {
    const attacks = [
      '/dashboard/../secret.txt',
      '/dashboard/%2e%2e/secret.txt',
      '/dashboard/%2E%2E%2Fsecret.txt',
      '/dashboard/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/dashboard/..%2fsecret.txt',
      '/dashboard/..%5csecret.txt',
      '/dashboard/%5c..%5csecret.txt',
      '/dashboard/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd',
      '/dashboard/....//secret.txt',
      '/dashboard/%2e%2e/dist-evil/secret.txt',
      '/dashboard/../dist-evil/secret.txt',
      '/dashboard/secret.txt%00.js',
      '/dashboard/.env',
      '/dashboard/%2eenv',
      '/dashboard//etc/passwd',
      '/dashboard/%2fetc%2fpasswd',
    ];
    for (const url of attacks) {
      const res = await app.inject({ url });
      expect(res.body, url).not.toContain(SECRET);
      expect(res.body, url).not.toContain('root:x:0');
      // Either a refusal or the app shell, never file contents from elsewhere.
      if (res.statusCode === 200) expect(res.body, url).toContain('<div id="root">');
      else {
        expect([400, 404], url).toContain(res.statusCode);
        expect(typeof res.json<{ detail: unknown }>().detail, url).toBe('string');
      }
    }
  });
});

describe('dashboard routes without a build', () => {
  it('answers 503 with a readable detail until the build appears, then serves it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trove-dash-missing-'));
    const missing = join(dir, 'dist');
    const server = Fastify();
    await server.register(dashboardRoutes, { distDir: missing });
    try {
      for (const url of ['/dashboard', '/dashboard/', '/dashboard/keys', '/dashboard/assets/a.js']) {
        const res = await server.inject({ url });
        expect(res.statusCode, url).toBe(503);
        expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
        expect(res.json()).toEqual({ detail: 'Dashboard not built: run npm run build', code: 'unavailable' });
        expectSecurityHeaders(res.headers);
      }
      mkdirSync(missing);
      writeFileSync(join(missing, 'index.html'), '<div id="root"></div>');
      const res = await server.inject({ url: '/dashboard/' });
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain('<div id="root">');
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
