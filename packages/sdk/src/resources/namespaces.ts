/** `/v1/workspaces/{ws}/namespaces` (ours): the namespaces of the workspace. */
import type { BaseClient, RequestOptions } from '../client.js';
import type { Namespace, NamespaceDeleteResult } from '../types.js';

/** Namespaces of the workspace (`client.namespaces`, `admin.namespaces`). */
export class Namespaces {
  constructor(private readonly client: BaseClient) {}

  /** Lists the namespaces that have been used. */
  async list(options?: RequestOptions): Promise<Namespace[]> {
    const ws = await this.client.getWorkspaceId(options);
    const page = await this.client.requestJson<{ namespaces: Namespace[] }>({
      ...options,
      method: 'GET',
      path: `/v1/workspaces/${encodeURIComponent(ws)}/namespaces`,
    });
    return page.namespaces;
  }

  /** Deletes a namespace with all its files and snapshots (admin key). */
  async delete(namespace: string, options?: RequestOptions): Promise<NamespaceDeleteResult> {
    const ws = await this.client.getWorkspaceId(options);
    return this.client.requestJson<NamespaceDeleteResult>({
      ...options,
      method: 'DELETE',
      path: `/v1/workspaces/${encodeURIComponent(ws)}/namespaces/${encodeURIComponent(namespace)}`,
    });
  }
}
