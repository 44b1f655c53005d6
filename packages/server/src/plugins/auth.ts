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

/** Requests per key in fixed one-minute windows. */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(readonly perMinute: number) {}

  /** The key's window if it is still running at `now`. */
  private current(keyId: string, now: number): { start: number; count: number } | undefined {
    const w = this.windows.get(keyId);
    return w && now - w.start < 60_000 ? w : undefined;
  }

  /** Counts one request of `keyId`: 0 when it is allowed, else the seconds until its window ends. */
  take(keyId: string, now = Date.now()): number {
    const w = this.current(keyId, now);
    if (!w) this.windows.set(keyId, { start: now, count: 1 });
    else if (++w.count > this.perMinute) return Math.max(1, Math.ceil((w.start + 60_000 - now) / 1000));
    return 0;
  }
}

export function registerAuth(app: FastifyInstance, auth: AuthService, limiter: RateLimiter | null): void {
  app.decorateRequest('auth', null as unknown as AuthContext);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (request.routeOptions.config?.public) return;
    // Unknown routes answer 404 without touching the database.
    if (!request.routeOptions.url) return;
    request.auth = await auth.authenticate(request.headers.authorization);
    const retryAfter = limiter ? limiter.take(request.auth.keyId) : 0;
    if (retryAfter > 0) {
      throw new AppError('rate_limited', `Rate limit of ${limiter!.perMinute} requests per minute exceeded`, { retryAfter });
    }
  });
}
