/**
 * API keys: creation (secret shown once), lookup by hash with a constant-time
 * comparison, revocation effective on the next request, and the scope rules
 * of docs/protocol.md.
 */
import type { Transaction } from 'kysely';
import type { Db, SqliteSync } from '../db/index.js';
import type { Database } from '../db/schema.js';
import { AppError } from '../errors.js';
import { hashKey, newApiKey, newKeyId, nowIso, safeEqual } from '../ids.js';
import type { EventService } from '../events/service.js';
import { validateNamespaceName } from '../namespaces/service.js';
import { AuthRepository } from './repository.js';

export interface AuthContext {
  workspaceId: string;
  keyId: string;
  keyName: string;
  scope: 'admin' | 'workspace';
  /** Namespace lock of a workspace key, or null. */
  namespace: string | null;
}

export interface KeyView {
  key_id: string;
  name: string;
  prefix: string;
  scope: 'admin' | 'workspace';
  namespace: string | null;
  created_at: string;
}

const INVALID = () => new AppError('unauthorized', 'Invalid API key');

/** How long a key found on SQLite is trusted without another lookup (see AuthService.recent). */
const RECENT_TTL_MS = 2000;
const RECENT_MAX = 10_000;

export class AuthService {
  /**
   * SQLite only: keys found in the last RECENT_TTL_MS, by hash. SQLite means one node, and this node is
   * the only writer of api_keys: a revocation (revokeKey, the only way a key stops working) empties the
   * map as it commits, so it still takes effect on the next request. The TTL only bounds how long a key
   * changed behind the server's back (another process on the same database file) stays usable.
   * PostgreSQL (a cluster: another node may revoke) always looks the key up.
   */
  private readonly recent: Map<string, { ctx: AuthContext; until: number }> | null;
  private readonly repo: AuthRepository;

  constructor(
    db: Db,
    private readonly events: EventService,
    /** SQLite: the lookup runs synchronously (see SqliteSync.read for why that is safe here). */
    sync: SqliteSync | null = null,
  ) {
    this.recent = sync ? new Map() : null;
    this.repo = new AuthRepository(db, sync);
  }

  /** Resolves an `Authorization` header to the key's identity, or throws 401. */
  async authenticate(header: string | undefined): Promise<AuthContext> {
    if (!header) throw new AppError('unauthorized', 'Invalid API key');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new AppError('unauthorized', 'Invalid API key');
    const hash = hashKey(m[1]!);
    const hit = this.recent?.get(hash);
    if (hit && hit.until > Date.now()) return hit.ctx;
    const row = await this.repo.findActiveByHash(hash);
    // Security: the index lookup finds the row; the final decision is a constant-time compare.
    if (!row || !safeEqual(row.key_hash, hash)) throw INVALID();
    const ctx: AuthContext = Object.freeze({
      workspaceId: row.workspace_id,
      keyId: row.id,
      keyName: row.name,
      scope: row.scope,
      namespace: row.namespace,
    });
    if (this.recent) {
      if (this.recent.size >= RECENT_MAX) this.recent.clear();
      this.recent.set(hash, { ctx, until: Date.now() + RECENT_TTL_MS });
    }
    return ctx;
  }

  /** Inserts a key; `secret` lets the bootstrap preset one. Emits key.created. */
  async createKey(
    workspaceId: string,
    input: { name: string; scope: 'admin' | 'workspace'; namespace: string | null; secret?: string },
    trx?: Transaction<Database>,
  ): Promise<KeyView & { api_key: string }> {
    if (input.scope === 'admin' && input.namespace !== null) {
      throw new AppError('bad_request', 'Admin keys cannot be locked to a namespace');
    }
    if (input.namespace !== null) validateNamespaceName(input.namespace);
    const apiKey = input.secret ?? newApiKey();
    const view: KeyView = {
      key_id: newKeyId(),
      name: input.name,
      prefix: apiKey.slice(0, 12),
      scope: input.scope,
      namespace: input.namespace,
      created_at: nowIso(),
    };
    const run = async (t: Transaction<Database>) => {
      await this.repo.insert(t, {
        id: view.key_id,
        workspace_id: workspaceId,
        name: view.name,
        prefix: view.prefix,
        key_hash: hashKey(apiKey),
        scope: view.scope,
        namespace: view.namespace,
        created_at: view.created_at,
        revoked_at: null,
      });
      await this.events.emit(
        { workspaceId, namespace: null, type: 'key.created', data: { key_id: view.key_id, name: view.name } },
        t,
      );
    };
    if (trx) await run(trx);
    else {
      await this.repo.transaction(run);
      this.events.bus.publish(workspaceId);
    }
    return { ...view, api_key: apiKey };
  }

  async listKeys(workspaceId: string): Promise<KeyView[]> {
    const rows = await this.repo.listActive(workspaceId);
    return rows.map((r) => ({
      key_id: r.id,
      name: r.name,
      prefix: r.prefix,
      scope: r.scope,
      namespace: r.namespace,
      created_at: r.created_at,
    }));
  }

  async revokeKey(workspaceId: string, keyId: string): Promise<{ key_id: string; revoked: true }> {
    const done = await this.repo.transaction(async (t) => {
      if (!(await this.repo.revoke(t, workspaceId, keyId, nowIso()))) return false;
      await this.events.emit({ workspaceId, namespace: null, type: 'key.revoked', data: { key_id: keyId } }, t);
      return true;
    });
    // Committed: no request from now on may use the key (a lookup before the commit was not cached after it).
    this.recent?.clear();
    if (!done) throw new AppError('key_not_found', `Key not found: ${keyId}`);
    this.events.bus.publish(workspaceId);
    return { key_id: keyId, revoked: true };
  }
}

/** Runtime endpoints: workspace keys only, and the namespace the key may use. */
export function runtimeNamespace(auth: AuthContext, header: string | string[] | undefined): string {
  if (auth.scope === 'admin') {
    throw new AppError('scope_forbidden', 'Admin keys cannot use runtime endpoints; use a workspace key');
  }
  const raw = Array.isArray(header) ? header[0] : header;
  if (raw === undefined || raw === '') {
    if (auth.namespace !== null) return auth.namespace;
    throw new AppError('namespace_required', 'X-Namespace header required');
  }
  const ns = validateNamespaceName(raw);
  if (auth.namespace !== null && ns !== auth.namespace) {
    throw new AppError('namespace_forbidden', `This key is locked to namespace "${auth.namespace}"`);
  }
  return ns;
}

/** Management endpoints under /v1/workspaces/{ws}: the key's own workspace only. */
export function requireWorkspace(auth: AuthContext, workspaceId: string): void {
  if (auth.workspaceId !== workspaceId)
    throw new AppError('workspace_not_found', `Workspace not found: ${workspaceId}`);
}

export function requireAdmin(auth: AuthContext, workspaceId: string, what: 'keys' | 'webhooks' | 'namespaces'): void {
  requireWorkspace(auth, workspaceId);
  if (auth.scope !== 'admin') throw new AppError('scope_forbidden', `Workspace keys cannot manage ${what}.`);
}
