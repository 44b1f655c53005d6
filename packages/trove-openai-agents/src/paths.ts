/**
 * Where commands run and how the editor reads the model's paths. Commands start in the namespace directory,
 * `/home/agent/workspace` inside the sandbox (docs/exec.md, "What a command sees"); the editor takes paths
 * relative to it (what a model that saw that working directory writes), or absolute ones below it.
 */

/** The namespace directory as commands see it, and their working directory. */
export const WORKING_DIRECTORY = '/home/agent/workspace';

/** Thrown for a path outside the namespace or otherwise unusable. */
export class InvalidPathError extends Error {
  override readonly name = 'InvalidPathError';
}

/**
 * The namespace-relative form of a path from the model: `src/app.py`, `./src/app.py`,
 * `/home/agent/workspace/src/app.py` and `/src/app.py` all name `src/app.py`. `..` segments are refused
 * (the server refuses them too, and resolves every path beneath the namespace root).
 */
export function toNamespacePath(path: string): string {
  if (typeof path !== 'string' || path.trim() === '') throw new InvalidPathError('The path is empty');
  if (path.includes('\0')) throw new InvalidPathError(`Invalid path '${path}': NUL byte`);
  let p = path;
  if (p === WORKING_DIRECTORY || p.startsWith(WORKING_DIRECTORY + '/')) p = p.slice(WORKING_DIRECTORY.length);
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new InvalidPathError(`Invalid path '${path}': '..' is not allowed`);
    parts.push(part);
  }
  if (parts.length === 0) throw new InvalidPathError(`Invalid path '${path}': it is the workspace directory itself`);
  return parts.join('/');
}

/**
 * The path to give the SDK's file calls (`write`, `upload`, `readBytes*`, `delete`) for a namespace-relative
 * path. The SDK strips one leading `workspace/` and the server strips another (docs/protocol.md: it accepts every
 * form), so both are added: a file the model calls `workspace/a.txt` stays `workspace/a.txt` in the namespace.
 */
export function toSdkPath(relative: string): string {
  return 'workspace/workspace/' + relative;
}
