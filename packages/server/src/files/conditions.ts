/**
 * Conditional writes and reads (RFC 9110 §13): a file's entity tag, and the If-Match / If-None-Match checks
 * a write makes against the file it would replace.
 */
import { AppError } from '../errors.js';
import { displayPath, type Stat } from '../tree/index.js';

/** `If-Match` / `If-None-Match` of a write (header values as sent). */
export interface WriteConditions {
  ifMatch?: string | null;
  ifNoneMatch?: string | null;
}

/**
 * A file's version as an HTTP entity tag: inode, size and modification time to
 * the nanosecond. Every API write makes a new inode (temp file, rename), and a
 * command that changes a file in place changes its mtime.
 */
export function etagOf(st: Pick<Stat, 'ino' | 'size' | 'mtimeSec' | 'mtimeNsec'>): string {
  return `"${st.ino.toString(16)}-${st.size.toString(16)}-${st.mtimeSec.toString(16)}.${st.mtimeNsec.toString(16)}"`;
}

export function isStar(v: string | null | undefined): boolean {
  return typeof v === 'string' && v.trim() === '*';
}

/** Whether a list of entity tags (`"a", W/"b"`) names `etag`; weak tags only match when `weak` is allowed. */
export function etagListMatches(list: string, etag: string, weak: boolean): boolean {
  if (isStar(list)) return true;
  return list.split(',').some((raw) => {
    let t = raw.trim();
    if (t.startsWith('W/')) {
      if (!weak) return false;
      t = t.slice(2);
    }
    return t === etag;
  });
}

function preconditionFailed(rel: string, why: string): AppError {
  return new AppError('precondition_failed', `Precondition failed for ${displayPath(rel)}: ${why}`);
}

/** RFC 9110 §13: If-Match (strong comparison) and If-None-Match against the current file (null: none). */
export function checkConditions(cond: WriteConditions, st: Stat | null, rel: string): void {
  const current = st && !st.isDirectory() ? etagOf(st) : null;
  if (cond.ifMatch != null && cond.ifMatch !== '') {
    if (current === null) throw preconditionFailed(rel, 'If-Match, but the file does not exist');
    if (!etagListMatches(cond.ifMatch, current, false))
      throw preconditionFailed(rel, `If-Match does not match its ETag ${current}`);
  }
  if (cond.ifNoneMatch != null && cond.ifNoneMatch !== '') {
    if (isStar(cond.ifNoneMatch) ? st !== null : current !== null && etagListMatches(cond.ifNoneMatch, current, true)) {
      throw preconditionFailed(
        rel,
        isStar(cond.ifNoneMatch)
          ? 'If-None-Match: *, but the file exists'
          : `If-None-Match matches its ETag ${current}`,
      );
    }
  }
}
