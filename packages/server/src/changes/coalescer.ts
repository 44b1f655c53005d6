/**
 * One event per path per command (or per window of a background process): what a path ended up as,
 * placed where its last change happened. A path created and removed within the same unit leaves no
 * trace (the tree is as it was); one that existed and was rewritten is `written`.
 */

export type ChangeKind = 'written' | 'deleted' | 'dir_created' | 'dir_deleted';

export interface PathChange {
  /** Namespace-relative path ('' is never recorded: the root is the server's). */
  rel: string;
  kind: ChangeKind;
}

export interface ChangeCounts {
  written: number;
  deleted: number;
  dirs_created: number;
  dirs_deleted: number;
}

export interface CoalescedResult {
  /** At most `cap` changes, in the order of their last change. */
  recorded: PathChange[];
  /** Per kind, every path the unit changed (recorded or not). */
  counts: ChangeCounts;
  /** Paths changed in all; more than recorded.length means the cap was reached. */
  total: number;
  /** Some changes were only counted (more paths than the unit may hold): counts are then an upper bound. */
  approximate: boolean;
}

interface Entry {
  kind: ChangeKind;
  /** False when the unit saw the path being created: removing it again undoes the change. */
  existed: boolean;
}

const COUNT_KEY: Record<ChangeKind, keyof ChangeCounts> = {
  written: 'written',
  deleted: 'deleted',
  dir_created: 'dirs_created',
  dir_deleted: 'dirs_deleted',
};

export class Coalescer {
  private readonly paths = new Map<string, Entry>();
  /** Changes to paths beyond `maxHeld`, counted by kind only. */
  private readonly beyond: ChangeCounts = { written: 0, deleted: 0, dirs_created: 0, dirs_deleted: 0 };
  private beyondTotal = 0;

  /** `maxHeld` bounds the memory of one unit whatever the command does (a loop over millions of names). */
  constructor(private readonly maxHeld: number) {}

  get size(): number {
    return this.paths.size + this.beyondTotal;
  }

  /** A change to `rel`; `created` when the event says the name is new (a create, a mkdir). */
  add(rel: string, kind: ChangeKind, created: boolean): void {
    const prev = this.paths.get(rel);
    if (!prev && this.paths.size >= this.maxHeld) {
      this.beyond[COUNT_KEY[kind]]++;
      this.beyondTotal++;
      return;
    }
    const existed = prev ? prev.existed : !created;
    // Re-inserted: a Map keeps insertion order, so the path moves to where its last change is.
    this.paths.delete(rel);
    if ((kind === 'deleted' || kind === 'dir_deleted') && !existed) return;
    this.paths.set(rel, { kind, existed });
  }

  result(cap: number): CoalescedResult {
    const counts: ChangeCounts = { ...this.beyond };
    const recorded: PathChange[] = [];
    for (const [rel, e] of this.paths) {
      counts[COUNT_KEY[e.kind]]++;
      if (recorded.length < cap) recorded.push({ rel, kind: e.kind });
    }
    return { recorded, counts, total: this.paths.size + this.beyondTotal, approximate: this.beyondTotal > 0 };
  }
}
