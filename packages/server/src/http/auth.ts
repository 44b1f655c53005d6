/**
 * Authenticates every route except those marked `config: { public: true }`
 * and sets `request.auth`. An optional per-key rate limit answers 429 with
 * Retry-After.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import { runtimeNamespace, type AuthContext, type AuthService } from '../auth/service.js';
import type { NsContext } from '../namespaces/service.js';

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthContext;
  }
  interface FastifyContextConfig {
    public?: boolean;
  }
}

/** The namespace a runtime request works in: its key's workspace, and X-Namespace (or the key's own namespace). */
export function nsContext(req: FastifyRequest): NsContext {
  return { workspaceId: req.auth.workspaceId, namespace: runtimeNamespace(req.auth, req.headers['x-namespace']) };
}

/** Keys whose window the limiter remembers at most; past it, the least recently seen key's window is dropped. */
const MAX_TRACKED_KEYS = 10_000;

/**
 * Requests per key in fixed one-minute windows, counted synchronously in the
 * auth hook, so concurrent or pipelined requests of one key each see their own
 * count. (@fastify/rate-limit was tried: its in-memory store hands every
 * request in flight the same mutable counter, so a burst that is partly within
 * the limit is refused entirely.) Memory is bounded by MAX_TRACKED_KEYS.
 */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    readonly perMinute: number,
    private readonly maxKeys = MAX_TRACKED_KEYS,
  ) {}

  /** Counts one request of `keyId`: 0 when it is allowed, else the seconds until its window ends. */
  take(keyId: string, now = Date.now()): number {
    let w = this.windows.get(keyId);
    // Re-inserted on every request: the Map's order is then least recently seen first.
    if (w) this.windows.delete(keyId);
    if (!w || now - w.start >= 60_000) w = { start: now, count: 0 };
    this.windows.set(keyId, w);
    if (this.windows.size > this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
    if (++w.count > this.perMinute) return Math.max(1, Math.ceil((w.start + 60_000 - now) / 1000));
    return 0;
  }

  /** Keys remembered now (for tests and the health view). */
  get trackedKeys(): number {
    return this.windows.size;
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
      throw new AppError('rate_limited', `Rate limit of ${limiter!.perMinute} requests per minute exceeded`, {
        retryAfter,
      });
    }
  });
}
