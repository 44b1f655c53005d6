/**
 * Client-side path forms of docs/protocol.md: `/write`, `/delete` and `/files/{path}`
 * take namespace-relative paths; `/v1/files*?path=` take the `workspace/…` form.
 */

/** Strips a leading `/` and one `workspace/` prefix: `/workspace/a/b.txt` → `a/b.txt`. */
export function toRelativePath(path: string): string {
  let p = path.replace(/^\/+/, '');
  if (p === 'workspace') return '';
  if (p.startsWith('workspace/')) p = p.slice('workspace/'.length);
  return p;
}

/** The `workspace/<rel>` form the content and listing APIs expect. */
export function toWorkspacePath(path: string): string {
  return 'workspace/' + toRelativePath(path);
}

/**
 * Percent-encodes each segment for `/files/{path}`, so names with `?`, `#`, `%`
 * or spaces round-trip (the server decodes the URL path once).
 */
export function encodeFilePath(path: string): string {
  return toRelativePath(path).split('/').map(encodeURIComponent).join('/');
}
