/**
 * Authenticates every route except those marked `config: { public: true }`
 * and sets `request.auth`. An optional per-key rate limit answers 429 with
 * Retry-After.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import type { AuthContext, AuthService } from '../services/auth.js';

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthContext;
  }
  interface FastifyContextConfig {
    public?: boolean;
  }
}

export function registerAuth(app: FastifyInstance, auth: AuthService, opts: { perKeyPerMinute: number }): void {
  app.decorateRequest('auth', null as unknown as AuthContext);
  const windows = new Map<string, { start: number; count: number }>();
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (request.routeOptions.config?.public) return;
    // Unknown routes answer 404 without touching the database.
    if (!request.routeOptions.url) return;
    request.auth = await auth.authenticate(request.headers.authorization);
    if (opts.perKeyPerMinute > 0) {
      const now = Date.now();
      const w = windows.get(request.auth.keyId);
      if (!w || now - w.start >= 60_000) windows.set(request.auth.keyId, { start: now, count: 1 });
      else if (++w.count > opts.perKeyPerMinute) {
        throw new AppError('rate_limited', `Rate limit of ${opts.perKeyPerMinute} requests per minute exceeded`, {
          retryAfter: Math.max(1, Math.ceil((w.start + 60_000 - now) / 1000)),
        });
      }
    }
  });
}
