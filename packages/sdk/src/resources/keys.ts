/** `/v1/workspaces/{ws}/keys` (admin scope): API keys of the workspace. */
import type { BaseClient, RequestOptions } from '../client.js';
import type { ApiKey, CreatedApiKey, KeyRevokeResult } from '../types.js';

/** Options of `keys.create()`. */
export interface KeyCreateOptions extends RequestOptions {
  /** Lock the key to one namespace (`null`/omitted: every namespace). */
  namespace?: string | null;
  /** Create an admin key instead of a workspace key (cannot be combined with `namespace`). */
  admin?: boolean;
}

/** API keys (`admin.keys`). */
export class Keys {
  constructor(private readonly client: BaseClient) {}

  /** Creates a key; the secret `apiKey` in the result is shown only this once. */
  async create(name: string, options: KeyCreateOptions = {}): Promise<CreatedApiKey> {
    const { namespace = null, admin = false, ...req } = options;
    const ws = await this.client.getWorkspaceId(req);
    return this.client.requestJson<CreatedApiKey>({
      ...req,
      method: 'POST',
      path: `/v1/workspaces/${encodeURIComponent(ws)}/keys`,
      json: { name, namespace, admin },
    });
  }

  /** Lists the active keys. */
  async list(options?: RequestOptions): Promise<ApiKey[]> {
    const ws = await this.client.getWorkspaceId(options);
    const page = await this.client.requestJson<{ keys: ApiKey[] }>({
      ...options,
      method: 'GET',
      path: `/v1/workspaces/${encodeURIComponent(ws)}/keys`,
    });
    return page.keys;
  }

  /** Revokes a key, effective immediately. */
  async revoke(keyId: string, options?: RequestOptions): Promise<KeyRevokeResult> {
    const ws = await this.client.getWorkspaceId(options);
    return this.client.requestJson<KeyRevokeResult>({
      ...options,
      method: 'DELETE',
      path: `/v1/workspaces/${encodeURIComponent(ws)}/keys/${encodeURIComponent(keyId)}`,
    });
  }
}
