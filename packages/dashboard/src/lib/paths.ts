/** Client-side helpers for the `workspace/<rel>` paths the API reports. */

export const ROOT = 'workspace/';

/** The directory listing path for a directory entry: always ends in `/`. */
export function dirPath(path: string): string {
  return path.endsWith('/') ? path : `${path}/`;
}

export function parentDir(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  return i <= 0 ? ROOT : trimmed.slice(0, i + 1);
}

export function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dirPath(dir) + name;
}

const IMAGE_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  bmp: 'image/bmp',
  ico: 'image/x-icon',
  svg: 'image/svg+xml',
};

/** The image MIME type for previewable images, or null. */
export function imageType(path: string): string | null {
  const ext = baseName(path).split('.').pop()?.toLowerCase() ?? '';
  return IMAGE_TYPES[ext] ?? null;
}

const NAMESPACE_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** docs/protocol.md's namespace rule; returns a message when the name is not acceptable. */
export function namespaceProblem(name: string): string | null {
  if (!NAMESPACE_RE.test(name)) return 'Use 1–64 letters, digits, dots, dashes or underscores.';
  if (name === '.' || name === '..') return 'A namespace cannot be “.” or “..”.';
  return null;
}
