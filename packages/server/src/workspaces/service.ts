/**
 * Workspaces (tenants): creation with their first keys, all in one
 * transaction with the workspace.created and key.created events.
 */
import type { Db } from '../db/index.js';
import { AppError } from '../errors.js';
import { newWorkspaceId, nowIso } from '../ids.js';
import type { EventService } from '../events/service.js';
import type { AuthService } from '../auth/service.js';
import { WorkspaceRepository, type WorkspaceRow } from './repository.js';

export interface CreatedWorkspace {
  workspace_id: string;
  name: string;
  admin_api_key: string;
  api_key: string;
}

export class WorkspaceService {
  private readonly repo: WorkspaceRepository;

  constructor(
    db: Db,
    private readonly events: EventService,
    private readonly auth: AuthService,
  ) {
    this.repo = new WorkspaceRepository(db);
  }

  async create(
    name: string,
    preset: { adminKey?: string | null; runtimeKey?: string | null } = {},
  ): Promise<CreatedWorkspace> {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 128) {
      throw new AppError('validation_failed', 'Workspace name must be 1-128 characters');
    }
    const id = newWorkspaceId();
    const result = await this.repo.transaction(async (t) => {
      await this.repo.insert(t, { id, name: trimmed, created_at: nowIso(), last_event_ms: 0 });
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
    return this.repo.count();
  }

  async get(id: string): Promise<WorkspaceRow | undefined> {
    return this.repo.get(id);
  }
}
