/**
 * Workspaces (tenants): creation with their first keys, all in one
 * transaction with the workspace.created and key.created events.
 */
import type { Db } from '../db/index.js';
import { AppError } from '../errors.js';
import { newWorkspaceId, nowIso } from '../ids.js';
import type { EventService } from '../events/service.js';
import type { AuthService } from '../auth/service.js';

export interface CreatedWorkspace {
  workspace_id: string;
  name: string;
  admin_api_key: string;
  api_key: string;
}

export class WorkspaceService {
  constructor(
    private readonly db: Db,
    private readonly events: EventService,
    private readonly auth: AuthService,
  ) {}

  async create(
    name: string,
    preset: { adminKey?: string | null; runtimeKey?: string | null } = {},
  ): Promise<CreatedWorkspace> {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 128) {
      throw new AppError('validation_failed', 'Workspace name must be 1-128 characters');
    }
    const id = newWorkspaceId();
    const result = await this.db.transaction().execute(async (t) => {
      await t.insertInto('workspaces').values({ id, name: trimmed, created_at: nowIso(), last_event_ms: 0 }).execute();
      await this.events.emit(
        { workspaceId: id, namespace: null, type: 'workspace.created', data: { name: trimmed } },
        t,
      );
      const admin = await this.auth.createKey(
        id,
        { name: 'admin', scope: 'admin', namespace: null, secret: preset.adminKey ?? undefined },
        t,
      );
      const runtime = await this.auth.createKey(
        id,
        { name: 'runtime', scope: 'workspace', namespace: null, secret: preset.runtimeKey ?? undefined },
        t,
      );
      return { workspace_id: id, name: trimmed, admin_api_key: admin.api_key, api_key: runtime.api_key };
    });
    this.events.bus.publish(id);
    return result;
  }

  async count(): Promise<number> {
    const r = await this.db
      .selectFrom('workspaces')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  async get(id: string) {
    return this.db.selectFrom('workspaces').selectAll().where('id', '=', id).executeTakeFirst();
  }
}
