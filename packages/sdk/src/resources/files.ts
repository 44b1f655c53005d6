/** File calls of the runtime API: `/write`, `/delete`, `/files/{path}`, `/v1/files`, `/v1/files/content`. */
import type { BaseClient, RequestOptions } from '../client.js';
import { TroveError } from '../errors.js';
import { encodeFilePath, toRelativePath, toWorkspacePath } from '../internal/paths.js';
import { prepareUploadBody, type UploadData, type UploadProgress } from '../internal/upload-body.js';
import type { DeleteResult, DirListing, FileBytes, FileContent, FileStream, WriteResult } from '../types.js';

/** Conditions of a write (optimistic concurrency): a 412 `PreconditionFailedError` when they do not hold. */
export interface WriteOptions extends RequestOptions {
  /** Write only if the file's current version is this `etag` (from a read or an earlier write). */
  ifMatch?: string;
  /** `'*'`: write only if the file does not exist yet. */
  ifNoneMatch?: '*';
}

function conditionHeaders(o: WriteOptions): Record<string, string> {
  const h: Record<string, string> = {};
  if (o.ifMatch !== undefined) h['if-match'] = o.ifMatch;
  if (o.ifNoneMatch !== undefined) h['if-none-match'] = o.ifNoneMatch;
  return h;
}

/** Options of `upload()`. */
export interface UploadOptions extends WriteOptions {
  /** Called as bytes are handed to the network (and once with `loaded: 0` at the start). */
  onProgress?: (progress: UploadProgress) => void;
  /** Total size of a stream body, reported as `total` in progress (strings, bytes and Blobs know theirs). */
  size?: number;
  /** `Content-Type` to send (default `application/octet-stream`; the server stores bytes as-is). */
  contentType?: string;
}

/** Options of `listDir()`. */
export interface ListDirOptions extends RequestOptions {
  /** List the whole subtree, depth-first and flat (capped at 1,000 entries and 20 levels). */
  recursive?: boolean;
}

/** File operations; `TroveClient` exposes them as `write`, `upload`, `readBytes`, `listDir`, … */
export class Files {
  constructor(private readonly client: BaseClient) {}

  /** `POST /write`: UTF-8 text, parents created, overwrite. */
  async write(path: string, content: string, options: WriteOptions = {}): Promise<WriteResult> {
    if (typeof content !== 'string') {
      throw new TypeError('write() takes text; use upload() for bytes, Blobs and streams');
    }
    const { ifMatch, ifNoneMatch, ...req } = options;
    return this.client.request(
      {
        ...req,
        headers: { ...conditionHeaders({ ifMatch, ifNoneMatch }), ...req.headers },
        method: 'POST',
        path: '/write',
        namespaced: true,
        json: { path: toRelativePath(path), content },
      },
      writeResult,
    );
  }

  /** `PUT /files/{path}` with a (possibly streamed) raw body. */
  async upload(path: string, data: UploadData, options: UploadOptions = {}): Promise<WriteResult> {
    const { onProgress, size, contentType, ifMatch, ifNoneMatch, ...req } = options;
    const body = prepareUploadBody(data, { onProgress, size });
    return this.client.request(
      {
        ...req,
        headers: {
          ...(contentType ? { 'content-type': contentType } : {}),
          ...conditionHeaders({ ifMatch, ifNoneMatch }),
          ...req.headers,
        },
        method: 'PUT',
        path: '/files/' + encodeFilePath(path),
        namespaced: true,
        body,
      },
      writeResult,
    );
  }

  /** `GET /files/{path}`, buffered, with the truncation headers. */
  readBytesFull(path: string, options?: RequestOptions): Promise<FileBytes> {
    return this.client.request(
      { ...options, method: 'GET', path: '/files/' + encodeFilePath(path), namespaced: true },
      async (res) => {
        const content = new Uint8Array(await res.arrayBuffer());
        const { truncated, sizeBytes } = truncation(res.headers);
        const etag = res.headers.get('etag');
        return { content, truncated, sizeBytes: sizeBytes ?? content.length, ...(etag ? { etag } : {}) };
      },
    );
  }

  /** `GET /files/{path}` as a stream. */
  readStream(path: string, options?: RequestOptions): Promise<FileStream> {
    return this.client.request(
      { ...options, method: 'GET', path: '/files/' + encodeFilePath(path), namespaced: true, stream: true },
      async (res) => {
        if (!res.body) throw new TroveError(`Empty response body for ${path}`);
        const { truncated, sizeBytes } = truncation(res.headers);
        const length = res.headers.get('content-length');
        return {
          body: res.body,
          truncated,
          sizeBytes: sizeBytes ?? (!truncated && length !== null ? Number(length) : null),
        };
      },
    );
  }

  /** `GET /v1/files/content?path=`. */
  readFile(path: string, options?: RequestOptions): Promise<FileContent> {
    return this.client.requestJson<FileContent>({
      ...options,
      method: 'GET',
      path: '/v1/files/content',
      query: { path: toWorkspacePath(path) },
      namespaced: true,
    });
  }

  /** `GET /v1/files?path=&recursive=true`. */
  listDir(path = 'workspace/', options: ListDirOptions = {}): Promise<DirListing> {
    const { recursive, ...req } = options;
    return this.client.requestJson<DirListing>({
      ...req,
      method: 'GET',
      path: '/v1/files',
      // docs/protocol.md: `recursive` is only sent when true.
      query: { path: toWorkspacePath(path), recursive: recursive ? 'true' : undefined },
      namespaced: true,
    });
  }

  /** `POST /delete`. */
  delete(path: string, options?: RequestOptions): Promise<DeleteResult> {
    return this.client.requestJson<DeleteResult>({
      ...options,
      method: 'POST',
      path: '/delete',
      namespaced: true,
      json: { path: toRelativePath(path) },
    });
  }
}

function truncation(headers: Headers): { truncated: boolean; sizeBytes: number | null } {
  const flag = headers.get('x-trove-truncated');
  const size = headers.get('x-trove-size');
  return {
    truncated: flag !== null && flag !== '0' && flag.toLowerCase() !== 'false',
    sizeBytes: size !== null && /^\d+$/.test(size) ? Number(size) : null,
  };
}

/** A write's JSON answer with the new version from its `ETag` header. */
async function writeResult(res: Response): Promise<WriteResult> {
  const body = (await res.json()) as { path: string; size_bytes: number };
  const etag = res.headers.get('etag');
  return { path: body.path, sizeBytes: body.size_bytes, ...(etag ? { etag } : {}) };
}
