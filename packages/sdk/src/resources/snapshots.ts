/** `/v1/snapshots`: point-in-time copies of the client's namespace. */
import type { BaseClient, RequestOptions } from '../client.js';
import { TroveError } from '../errors.js';
import { prepareUploadBody, type UploadData, type UploadProgress } from '../internal/upload-body.js';
import type { Snapshot, SnapshotDeleteResult, SnapshotRestoreResult } from '../types.js';

/** Parameters of `snapshots.create()`. */
export interface SnapshotCreateParams extends RequestOptions {
  /** Up to 128 characters. */
  label?: string | null;
}

/** Parameters of `snapshots.import()`. */
export interface SnapshotImportParams extends RequestOptions {
  /** Up to 128 characters. */
  label?: string | null;
  /** `application/gzip` (default: a `.tar.gz`) or `application/x-tar` (a plain `.tar`). */
  contentType?: 'application/gzip' | 'application/x-tar';
  /** Called as bytes are handed to the network (and once with `loaded: 0` at the start). */
  onProgress?: (progress: UploadProgress) => void;
  /** Total size of a stream body, reported as `total` in progress. */
  size?: number;
}

/**
 * A snapshot's archive being downloaded: a gzip'd tar, read as it arrives.
 * Iterate it (`for await (const chunk of archive)`) or read `body`, once.
 */
export interface SnapshotArchive extends AsyncIterable<Uint8Array> {
  /** The archive's bytes as a Web stream. */
  body: ReadableStream<Uint8Array>;
  /** The archive's size when the server sent it (`Content-Length`). */
  sizeBytes: number | null;
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

  /**
   * Downloads a snapshot as a `.tar.gz` (`GET /v1/snapshots/{id}/archive`), streamed.
   * The timeout covers the response headers only; cancel a download with `signal`.
   */
  export(snapshotId: string, options?: RequestOptions): Promise<SnapshotArchive> {
    return this.client.request(
      {
        ...options,
        method: 'GET',
        path: `/v1/snapshots/${encodeURIComponent(snapshotId)}/archive`,
        namespaced: true,
        stream: true,
        headers: { accept: 'application/gzip', ...options?.headers },
      },
      async (res) => {
        if (!res.body) throw new TroveError(`Empty response body for snapshot ${snapshotId}`);
        const length = res.headers.get('content-length');
        return archiveOf(res.body, length !== null && /^\d+$/.test(length) ? Number(length) : null);
      },
    );
  }

  /**
   * Creates a snapshot of the namespace from a tar (`POST /v1/snapshots/import`): a `.tar.gz` by default, or a
   * plain tar with `contentType: 'application/x-tar'`. The server validates it like a restore (422 when refused).
   * A stream body is sent once, never retried.
   */
  import(data: UploadData, params: SnapshotImportParams = {}): Promise<Snapshot> {
    const { label, contentType = 'application/gzip', onProgress, size, ...req } = params;
    return this.client.requestJson<Snapshot>({
      ...req,
      headers: { 'content-type': contentType, ...req.headers },
      method: 'POST',
      path: '/v1/snapshots/import',
      query: { label: label ?? undefined },
      namespaced: true,
      body: prepareUploadBody(data, { onProgress, size }),
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

function archiveOf(body: ReadableStream<Uint8Array>, sizeBytes: number | null): SnapshotArchive {
  return {
    body,
    sizeBytes,
    async *[Symbol.asyncIterator]() {
      const reader = body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          yield value;
        }
      } finally {
        // Stopped early (break, throw): the rest of the download is not wanted.
        await reader.cancel().catch(() => {});
        reader.releaseLock();
      }
    },
  };
}
