/**
 * The agent's paths and the namespace's. deepagents hands backends absolute paths (`/src/app.py`); here `/` is
 * the namespace root, which commands see as `workspace/` (their working directory, see `execute`).
 */

/** Thrown for a path that cannot name anything in the namespace (`..`, `~`, NUL). */
export class InvalidPathError extends Error {
  override readonly name = 'InvalidPathError';
}

/**
 * The namespace-relative form of an agent path: `/src/app.py` → `src/app.py`, `/` → `` (the root).
 * Relative paths are taken from the root, as deepagents' virtual filesystem backend does. The server
 * checks every path again beneath the namespace root (docs/protocol.md); this check only gives clear errors early.
 */
export function toNamespacePath(path: string): string {
  if (typeof path !== 'string') throw new InvalidPathError('The path must be a string');
  if (path.includes('\0')) throw new InvalidPathError(`Invalid path '${path}': NUL byte`);
  if (path.startsWith('~'))
    throw new InvalidPathError(`Invalid path '${path}': '~' is not expanded; use an absolute path`);
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new InvalidPathError(`Invalid path '${path}': '..' is not allowed`);
    parts.push(part);
  }
  return parts.join('/');
}

/**
 * The path to give the SDK's listing and content calls (`listDir`, `readFile`): they send `workspace/<rel>`
 * after stripping one `workspace/`, and the server strips that one.
 */
export function toSdkListPath(relative: string): string {
  return 'workspace/' + relative;
}

/**
 * The path to give the SDK's other file calls (`write`, `upload`, `readBytes*`, `delete`): the SDK strips one
 * leading `workspace/` and the server strips another (docs/protocol.md: it accepts every form), so both are added.
 * Either way a file the agent calls `/workspace/a.txt` stays `workspace/a.txt` inside the namespace.
 */
export function toSdkPath(relative: string): string {
  return 'workspace/workspace/' + relative;
}

/** The agent's form of a path the server reports (`workspace/src/app.py` → `/src/app.py`). */
export function fromServerPath(serverPath: string): string {
  const rel = serverPath.replace(/^\/+/, '');
  if (rel === 'workspace' || rel === 'workspace/') return '/';
  return '/' + (rel.startsWith('workspace/') ? rel.slice('workspace/'.length) : rel);
}

/** The agent's form of a namespace-relative path (`src/app.py` → `/src/app.py`). */
export function toAgentPath(relative: string): string {
  return '/' + relative;
}

/** Single-quotes a string for `sh` (an embedded `'` becomes `'\''`). */
export function shellQuote(s: string): string {
  return "'" + s.replace(/'/g, "'\\''") + "'";
}
