/**
 * Client paths as strings: validation and the namespace-relative form. These
 * never touch the filesystem; resolving one is the tree's job (tree/index.ts).
 */
import { AppError } from '../errors.js';

export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;

/** `workspace/<rel>`, the form every response reports. */
export function displayPath(rel: string): string {
  return rel === '' ? 'workspace/' : `workspace/${rel}`;
}

/**
 * Accepts every form of docs/protocol.md (`a/b`, `/a/b`, `workspace/a/b`, `/workspace/a/b`,
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
    // Refuse every `..` rather than reason about where it lands (the kernel would refuse an escape anyway).
    if (part === '..') throw new AppError('path_invalid', `Path may not contain "..": ${input}`);
    if (Buffer.byteLength(part, 'utf8') > MAX_NAME_BYTES) {
      throw new AppError('path_invalid', `Path component is longer than ${MAX_NAME_BYTES} bytes`);
    }
    parts.push(part);
  }
  return parts.join('/');
}

/** Splits a non-root relative path into its parent ('' = root) and last name. */
export function splitRel(rel: string): { parent: string; name: string } {
  const i = rel.lastIndexOf('/');
  return i < 0 ? { parent: '', name: rel } : { parent: rel.slice(0, i), name: rel.slice(i + 1) };
}
