import { useEffect, useState } from 'react';
import type { FileContent, TroveClient } from 'trove-sdk';
import { isAbort } from '../../lib/errors';
import { ErrorMessage } from '../../components/error-message';
import { imageType } from '../../lib/paths';
import { formatBytes } from '../../lib/bytes';

/** Larger images are not fetched just to preview them. */
const IMAGE_PREVIEW_LIMIT = 25 * 1024 * 1024;

type Preview =
  | { kind: 'loading' }
  | { kind: 'text'; content: FileContent }
  | { kind: 'binary'; content: FileContent }
  | { kind: 'image'; url: string }
  | { kind: 'too-big' }
  | { kind: 'error'; error: unknown };

/**
 * Text through /v1/files/content; images as raw bytes turned into a blob: URL, because an
 * <img src> cannot carry the Authorization header (and the CSP allows blob: images only).
 */
export function FilePreview({
  trove,
  path,
  sizeBytes,
  version,
}: {
  /** The runtime client of the file's namespace. */
  trove: TroveClient;
  path: string;
  sizeBytes: number | null;
  /** Changes when the file may have changed, to refetch. */
  version: number;
}) {
  const [preview, setPreview] = useState<Preview>({ kind: 'loading' });
  const image = imageType(path);

  useEffect(() => {
    const ctrl = new AbortController();
    let url: string | null = null;
    setPreview({ kind: 'loading' });
    const run = async () => {
      if (image) {
        if (sizeBytes !== null && sizeBytes > IMAGE_PREVIEW_LIMIT) return setPreview({ kind: 'too-big' });
        const bytes = await trove.readBytes(path, { signal: ctrl.signal });
        // The server sends raw bytes; the extension decides how the browser decodes them.
        url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: image }));
        if (!ctrl.signal.aborted) setPreview({ kind: 'image', url });
        return;
      }
      const content = await trove.readFile(path, { signal: ctrl.signal });
      if (!ctrl.signal.aborted) setPreview({ kind: content.encoding === 'utf-8' ? 'text' : 'binary', content });
    };
    run().catch((error: unknown) => {
      if (!ctrl.signal.aborted && !isAbort(error)) setPreview({ kind: 'error', error });
    });
    return () => {
      ctrl.abort();
      if (url) URL.revokeObjectURL(url);
    };
  }, [trove, path, image, sizeBytes, version]);

  switch (preview.kind) {
    case 'loading':
      return (
        <p role="status" className="muted">
          Loading preview…
        </p>
      );
    case 'error':
      return <ErrorMessage error={preview.error} prefix="Preview failed" />;
    case 'too-big':
      return (
        <p className="muted">This image is too large to preview ({formatBytes(sizeBytes)}). Download it instead.</p>
      );
    case 'image':
      return (
        <div className="image-preview">
          <img src={preview.url} alt={`Preview of ${path}`} />
        </div>
      );
    case 'binary':
      return <p className="muted">Binary file ({formatBytes(preview.content.sizeBytes)}): download it to open it.</p>;
    case 'text':
      return (
        <>
          {preview.content.truncated ? (
            <p className="notice">Showing the first 1 MiB of {formatBytes(preview.content.sizeBytes)}.</p>
          ) : null}
          <pre className="text-preview" tabIndex={0} aria-label={`Contents of ${path}`} data-testid="text-preview">
            {preview.content.content === '' ? <span className="muted">(empty file)</span> : preview.content.content}
          </pre>
        </>
      );
  }
}
