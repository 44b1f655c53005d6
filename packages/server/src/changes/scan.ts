/**
 * The fallback without fanotify: a namespace walked before and after a one-shot exec (through its root
 * descriptor, tree/walk.ts), at most `max` entries each time. What it cannot see: a file changed and
 * changed back within the command, a change that keeps size and mtime (touch -r), the order of changes
 * (reported in path order), anything past the bound.
 */
import type { NamespaceService } from '../namespaces/service.js';
import { S_IFDIR } from '../tree/sys.js';
import type { ChangeKind } from './coalescer.js';

export interface ScanResult {
  /** rel → "d" for a directory, else "f:<size>:<mtime>:<ino>". */
  entries: Map<string, string>;
  /** False when the walk stopped at the bound. */
  complete: boolean;
}

export async function scanNamespace(
  namespaces: NamespaceService,
  owner: { workspaceId: string; namespace: string },
  max: number,
): Promise<ScanResult> {
  const entries = new Map<string, string>();
  const tree = namespaces.openTree(owner.workspaceId, owner.namespace);
  if (!tree) return { entries, complete: true };
  try {
    const walked = await tree.walk({
      visit(e) {
        if (entries.size >= max) return false;
        const isDir = (e.st.mode & 0o170000) === S_IFDIR;
        entries.set(
          e.rel.toString('utf8'),
          isDir ? 'd' : `f:${e.st.size}:${e.st.mtimeSec}.${e.st.mtimeNsec}:${e.st.ino}`,
        );
        return true;
      },
    });
    return { entries, complete: walked.complete && walked.tooDeep === 0 };
  } finally {
    tree.close();
  }
}

/** Removals first (children before their directory), then creations and rewrites, each in walk order. */
export function diffScans(before: ScanResult, after: ScanResult): Array<{ rel: string; kind: ChangeKind }> {
  const out: Array<{ rel: string; kind: ChangeKind }> = [];
  const removed: Array<{ rel: string; kind: ChangeKind }> = [];
  for (const [rel, sig] of before.entries) {
    const now = after.entries.get(rel);
    if (now === undefined) {
      // Past the second walk's bound is unknown, not removed.
      if (after.complete) removed.push({ rel, kind: sig === 'd' ? 'dir_deleted' : 'deleted' });
    } else if ((now === 'd') !== (sig === 'd')) {
      removed.push({ rel, kind: sig === 'd' ? 'dir_deleted' : 'deleted' });
    }
  }
  // A walk is pre-order: reversed, a directory's entries come before it.
  out.push(...removed.reverse());
  for (const [rel, sig] of after.entries) {
    const was = before.entries.get(rel);
    if (was === sig) continue;
    if (was === undefined && !before.complete) continue; // past the first walk's bound: unknown
    out.push({ rel, kind: sig === 'd' ? 'dir_created' : 'written' });
  }
  return out;
}
