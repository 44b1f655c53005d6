/**
 * The only place a client path becomes a host path.
 *
 * A client path is normalised to a namespace-relative form (`a/b.txt`), then
 * resolved against the realpath of the namespace root: the deepest existing
 * ancestor is realpath'd and must still be inside the root (so a symlink
 * planted by exec in a parent directory cannot lead outside). Opened files are
 * checked again through /proc/self/fd, which closes the window between the
 * check and the open.
 *
 * Calls that only read metadata (lstat, stat, realpath, readlink) and the
 * open of a file for reading run synchronously: each costs 1–4 µs of CPU
 * against ~30 µs for a round trip through libuv's thread pool, and none of
 * them writes to the filesystem, so none waits on the journal or on file data
 * (the directory entries they need were just looked up by the same
 * resolution). Anything that creates or writes a file stays on the pool; file
 * contents too, except small reads (services/files.ts). (sandbox/exec.ts
 * prepareRoot makes the same trade for the namespace root.)
 */
import fs, { constants, promises as fsp, lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, relative, sep, isAbsolute } from 'node:path';
import { AppError } from '../errors.js';

export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;

/** `workspace/<rel>`, the form every response reports. */
export function displayPath(rel: string): string {
  return rel === '' ? 'workspace/' : `workspace/${rel}`;
}

/**
 * Accepts every form of PROTOCOL.md (`a/b`, `/a/b`, `workspace/a/b`, `/workspace/a/b`,
 * `workspace/`, `` for the root) and returns the namespace-relative path ('' = root).
 */
export function normalizeClientPath(input: unknown): string {
  if (typeof input !== 'string') throw new AppError('path_invalid', 'Path must be a string');
  // Security: NUL truncates paths in C APIs; lone surrogates cannot be encoded as UTF-8.
  if (input.includes('\0')) throw new AppError('path_invalid', 'Path contains a NUL byte');
  if (!input.isWellFormed()) throw new AppError('path_invalid', 'Path is not valid UTF-8');
  if (Buffer.byteLength(input, 'utf8') > MAX_PATH_BYTES) {
    throw new AppError('path_invalid', `Path is longer than ${MAX_PATH_BYTES} bytes`);
  }
  let s = input.replace(/^\/+/, '');
  if (s === 'workspace') s = '';
  else if (s.startsWith('workspace/')) s = s.slice('workspace/'.length);
  const parts: string[] = [];
  for (const part of s.split('/')) {
    if (part === '' || part === '.') continue;
    // Security: refuse every `..` rather than reason about where it lands.
    if (part === '..') throw new AppError('path_invalid', `Path may not contain "..": ${input}`);
    if (Buffer.byteLength(part, 'utf8') > MAX_NAME_BYTES) {
      throw new AppError('path_invalid', `Path component is longer than ${MAX_NAME_BYTES} bytes`);
    }
    parts.push(part);
  }
  return parts.join('/');
}

/** True when `child` is `root` or below it (path.relative, not startsWith: /ns/a vs /ns/a-evil). */
export function isInside(root: string, child: string): boolean {
  const rel = relative(root, child);
  return rel === '' || (!rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel));
}

export interface Resolved {
  /** realpath of the namespace root. */
  root: string;
  /** Namespace-relative path ('' = root). */
  rel: string;
  /** Host path with every existing ancestor realpath'd and verified; the last component is not followed. */
  abs: string;
  /** Host path of the (verified) parent directory; equals root for the root itself. */
  parent: string;
  name: string;
}

function outside(rel: string): AppError {
  return new AppError('path_outside_namespace', `Path resolves outside the namespace: ${displayPath(rel)}`);
}

/**
 * Resolves the parent chain of `rel` inside `root`, which must be a real path
 * (NamespaceService.ensure returns one). Missing ancestors are allowed
 * (callers that write create them with mkdirInside).
 */
export async function resolveInRoot(root: string, rel: string): Promise<Resolved> {
  if (rel === '') return { root, rel, abs: root, parent: root, name: '' };
  const parts = rel.split('/');
  const name = parts.pop()!;
  let parent = root;
  for (let i = 0; i < parts.length; i++) {
    const next = join(parent, parts[i]!);
    let st;
    try {
      st = lstatSync(next, { throwIfNoEntry: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') throw notADirectory(parts.slice(0, i).join('/'));
      throw err;
    }
    if (st === undefined) {
      parent = join(next, ...parts.slice(i + 1));
      return { root, rel, abs: join(parent, name), parent, name };
    }
    if (st.isSymbolicLink()) {
      let real: string;
      try {
        real = realpathSync.native(next);
      } catch {
        throw outside(rel);
      }
      // Security: a symlinked ancestor must land inside the root.
      if (!isInside(root, real)) throw outside(rel);
      parent = real;
    } else if (st.isDirectory()) {
      parent = next;
    } else {
      throw notADirectory(parts.slice(0, i + 1).join('/'));
    }
  }
  return { root, rel, abs: join(parent, name), parent, name };
}

function notADirectory(rel: string): AppError {
  return new AppError('not_a_directory', `Not a directory: ${displayPath(rel)}`);
}

/**
 * Follows a final-component symlink for reading, verifying containment.
 * Returns the verified host path of the target.
 */
export async function followForRead(r: Resolved): Promise<string> {
  let real: string;
  try {
    real = realpathSync.native(r.abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      // A dangling symlink is "missing"; anything else missing is plainly missing.
      throw new AppError('path_not_found', `Path not found: ${displayPath(r.rel)}`);
    }
    if (code === 'ELOOP') throw outside(r.rel);
    throw err;
  }
  // Security: the final component may be a symlink planted by exec.
  if (!isInside(r.root, real)) throw outside(r.rel);
  return real;
}

/**
 * Re-checks an open descriptor: /proc/self/fd/N names the file actually
 * opened, whatever happened to the path since it was resolved.
 */
export function assertFdInside(fd: number, root: string, rel: string): void {
  let actual: string;
  try {
    actual = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return; // no procfs (not Linux): the realpath checks above are the defence.
  }
  // Security: the descriptor, not the path, decides: a path swapped after resolving cannot lead outside.
  if (!isInside(root, actual)) throw outside(rel);
}

/**
 * Opens a verified path for reading without following a final symlink and
 * returns the descriptor; the caller closes it.
 */
export async function openForRead(root: string, realPath: string, rel: string): Promise<number> {
  // Security: O_NONBLOCK so a FIFO planted by exec cannot park a thread forever.
  // A bare descriptor: a FileHandle costs twice the CPU per open+close.
  const fd = fs.openSync(realPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    assertFdInside(fd, root, rel);
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * Creates the missing directories of `r.parent` one level at a time,
 * re-verifying containment after each (a concurrent exec may race us).
 * Returns the list of directories created (for chown).
 */
export async function mkdirInside(r: Resolved): Promise<string[]> {
  const created: string[] = [];
  const relParent = relative(r.root, r.parent);
  if (relParent === '') return created;
  // `cur` is always a real path (root is realpath'd, every step below keeps it so),
  // so a plain directory at `next` is its own realpath: only links need resolving.
  let cur = r.root;
  for (const part of relParent.split(sep)) {
    const next = join(cur, part);
    const st = lstatSync(next, { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      cur = next;
      continue;
    }
    if (st === undefined) {
      try {
        await fsp.mkdir(next, { mode: 0o755 });
        created.push(next);
        cur = next;
        continue;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    // A link (or an entry that appeared since the lstat): follow it and check where it lands.
    const real = realpathSync.native(next);
    // Security: an existing (or raced-in) link on the way must stay inside the root.
    if (!isInside(r.root, real)) throw outside(r.rel);
    if (!statSync(real).isDirectory()) throw notADirectory(relative(r.root, next));
    cur = real;
  }
  if (cur !== r.parent && dirname(r.abs) !== cur) {
    // The chain resolved somewhere else (raced symlink inside the root): use it.
    r.parent = cur;
    r.abs = join(cur, r.name);
  }
  return created;
}
