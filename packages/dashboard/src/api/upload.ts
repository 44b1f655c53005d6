import { rawFileUrl } from './client';
import { ApiError, NetworkError, errorFromBody } from './errors';

export interface UploadHandle {
  promise: Promise<{ path: string; size_bytes: number }>;
  abort(): void;
}

/**
 * PUT /files/{path} with the raw file bytes. XHR rather than fetch because only XHR reports
 * upload progress in every browser (streamed fetch bodies need HTTP/2 and half-duplex support).
 */
export function uploadFile(
  key: string,
  namespace: string,
  path: string,
  file: Blob,
  onProgress: (loaded: number, total: number) => void,
  onUnauthorized: (err: ApiError) => void,
): UploadHandle {
  const xhr = new XMLHttpRequest();
  const promise = new Promise<{ path: string; size_bytes: number }>((resolve, reject) => {
    xhr.open('PUT', rawFileUrl(path));
    xhr.setRequestHeader('authorization', `Bearer ${key}`);
    xhr.setRequestHeader('x-namespace', namespace);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(file.size, file.size);
        try {
          resolve(JSON.parse(xhr.responseText) as { path: string; size_bytes: number });
        } catch {
          resolve({ path, size_bytes: file.size });
        }
        return;
      }
      const err = errorFromBody(xhr.status, xhr.responseText, xhr.statusText);
      if (xhr.status === 401) onUnauthorized(err);
      reject(err);
    };
    xhr.onerror = () => reject(new NetworkError(new Error('upload failed')));
    xhr.onabort = () => reject(new DOMException('Upload cancelled', 'AbortError'));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}
