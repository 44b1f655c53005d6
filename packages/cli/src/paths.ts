/** The path forms of docs/protocol.md, for display: `a/b.txt`, `/workspace/a/b.txt` → `workspace/a/b.txt`. */

export function relativePath(path: string): string {
  let p = path.replace(/^\/+/, '');
  if (p === 'workspace' || p === '.' || p === './') return '';
  if (p.startsWith('workspace/')) p = p.slice('workspace/'.length);
  if (p.startsWith('./')) p = p.slice(2);
  return p;
}

export function workspacePath(path: string): string {
  return 'workspace/' + relativePath(path);
}

/** The last segment of a remote path (`workspace/a/b.txt` → `b.txt`). */
export function remoteBasename(path: string): string {
  const parts = relativePath(path).split('/').filter(Boolean);
  return parts[parts.length - 1] ?? '';
}
