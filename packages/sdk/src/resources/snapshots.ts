/** `/v1/snapshots`: point-in-time copies of the client's namespace. */
import type { BaseClient, RequestOptions } from '../client.js';
import type { Snapshot, SnapshotDeleteResult, SnapshotRestoreResult } from '../types.js';

/** Parameters of `snapshots.create()`. */
export interface SnapshotCreateParams extends RequestOptions {
  /** Up to 128 characters. */
  label?: string | null;
}

/** Snapshots of the namespace (`client.snapshots`). */
export class Snapshots {
  constructor(private readonly client: BaseClient) {}

  /** Takes a snapshot (a tar of the namespace tree). */
  create(params: SnapshotCreateParams = {}): Promise<Snapshot> {
    const { label = null, ...req } = params;
    return this.client.requestJson<Snapshot>({
      ...req,
      method: 'POST',
      path: '/v1/snapshots',
      namespaced: true,
      json: { label },
    });
  }

  /** Lists the namespace's snapshots, newest first. */
  async list(options?: RequestOptions): Promise<Snapshot[]> {
    const page = await this.client.requestJson<{ snapshots: Snapshot[] }>({
      ...options,
      method: 'GET',
      path: '/v1/snapshots',
      namespaced: true,
    });
    return page.snapshots;
  }

  /** Makes the namespace exactly the snapshot (files added since are removed). */
  restore(snapshotId: string, options?: RequestOptions): Promise<SnapshotRestoreResult> {
    return this.client.requestJson<SnapshotRestoreResult>({
      ...options,
      method: 'POST',
      path: `/v1/snapshots/${encodeURIComponent(snapshotId)}/restore`,
      namespaced: true,
    });
  }

  /** Deletes a snapshot. */
  delete(snapshotId: string, options?: RequestOptions): Promise<SnapshotDeleteResult> {
    return this.client.requestJson<SnapshotDeleteResult>({
      ...options,
      method: 'DELETE',
      path: `/v1/snapshots/${encodeURIComponent(snapshotId)}`,
      namespaced: true,
    });
  }
}
