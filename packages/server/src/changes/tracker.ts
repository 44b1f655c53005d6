/**
 * What commands do to the tree, as events (docs/events.md, "Changes made by commands").
 *
 * fanotify mode (root, the default): one fanotify group watches the data dir's file system
 * (watcher.ts). A record's process is mapped to its cgroup slot, each slot to the command that holds it
 * (a one-shot exec or a background process): exact for every process still alive when its record is
 * read. A slot changes hands at a marker in the queue itself (attach), so the records before it belong
 * to the previous command and the ones after to the next, however late they are read. Records of a
 * process already gone (a short `touch` reaped before its record was read) are attributed by the
 * namespace their path is in: to its one running command, or the oldest one when several run. A
 * directory that is removed before its records are read is found again through the handle that its
 * parent's record of the removal names.
 *
 * scan mode (no fanotify: the server is not root): a one-shot exec's namespace is walked before and
 * after the command, at most scanMaxFiles entries each time; background processes are not tracked.
 *
 * A one-shot exec's changes are committed before its end is reported (exec.completed comes after them);
 * a background process's changes go out per window (windowMs) while it runs.
 */
import { realpathSync } from 'node:fs';
import type { EventService, EmitInput } from '../events/service.js';
import type { NamespaceService } from '../namespaces/service.js';
import type { CgroupSlot } from '../sandbox/cgroups.js';
import { displayPath } from '../tree/paths.js';
import { closeQuietly } from '../tree/walk.js';
import { BENEATH, O_DIRECTORY, O_RDONLY, openat2, regularSizesAt } from '../tree/sys.js';
import { Coalescer, type ChangeCounts, type ChangeKind, type PathChange } from './coalescer.js';
import {
  FAN_CREATE,
  FAN_DELETE,
  FAN_MOVED_FROM,
  FAN_MOVED_TO,
  FAN_ONDIR,
  FanotifyWatcher,
  type FileRecord,
} from './watcher.js';
import { diffScans, scanNamespace, type ScanResult } from './scan.js';

export type ChangeMode = 'fanotify' | 'scan' | 'off';

export interface ChangesConfig {
  /** auto: fanotify when it works, else scan (TROVE_CHANGES). */
  mode: 'auto' | ChangeMode;
  /** Paths recorded per command (per window of a background process) before one files.changed summary. */
  maxPerCommand: number;
  /** A background process's changes go out this often. */
  windowMs: number;
  /** scan mode: entries walked per scan at most. */
  scanMaxFiles: number;
}

/** What tracking does on this node (admin health, SandboxRunner.status()). */
export interface ChangeTrackingStatus {
  mode: ChangeMode;
  /** What is not tracked, one operator-facing line each. */
  limits: string[];
  max_per_command: number;
}

export interface ChangeOwner {
  kind: 'exec' | 'process';
  /** exec_id or process_id. */
  id: string;
  workspaceId: string;
  namespace: string;
}

/** One command's tracking, from before it starts to its end. */
export interface ChangeUnit {
  /** The command's cgroup slot is known (it runs in it from now on); null: it has none. */
  attach(slot: CgroupSlot | null): void;
  /** The command ended: its changes are committed when this resolves. */
  end(): Promise<void>;
}

/** What SandboxRunner sees of the tracker. */
export interface ChangeHooks {
  /** `slots`: the command will run in a cgroup slot (sandboxed, with cgroups). */
  begin(owner: ChangeOwner, opts: { slots: boolean }): Promise<ChangeUnit>;
  status(): ChangeTrackingStatus;
}

interface Log {
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

/** Paths one unit holds at most while coalescing (its memory bound), whatever the cap. */
const MAX_HELD = 200_000;
/** Records of gone processes in removed directories, waiting for the removal that names the directory. */
const MAX_ORPHANS = 50_000;
/** Directory handles remembered with their paths (for directories removed before their records are read). */
const MAX_LEARNED = 200_000;
/**
 * Longest a command's end waits for its marker to be read. The reader reads within milliseconds; this only
 * bounds a reader that stopped (the command's answer is not held for ever: its changes are then incomplete).
 */
const DRAIN_TIMEOUT_MS = 10_000;

interface Located {
  workspaceId: string;
  namespace: string;
  rel: string;
}

/** Between a workspace's directory and its namespaces' (trees/<ws>/namespaces/<ns>). */
const NAMESPACES_DIR = '/namespaces/';
/** An empty, `.` or `..` component: never in a path the kernel reports, and never recorded. */
const ODD_SEGMENT = /(^|\/)\.{0,2}(\/|$)/;

class NoopUnit implements ChangeUnit {
  attach(): void {}
  async end(): Promise<void> {}
}

export class ChangeTracker implements ChangeHooks {
  private mode: ChangeMode = 'off';
  private reason = 'change tracking is off (TROVE_CHANGES=off)';
  private watcher: FanotifyWatcher | null = null;
  private treesPrefix = '';
  /** Slot key → the unit that holds it (applied at its marker). */
  private readonly slotOwner = new Map<string, WatchUnit>();
  /** Marker seq → the slot assignment it applies. */
  private readonly assignAt = new Map<number, { key: string; unit: WatchUnit }>();
  /** Units running now, oldest first (attribution by namespace). */
  private readonly active = new Set<WatchUnit>();
  /** Directory handle → its path, from the records that created, removed or moved it. */
  private readonly learned = new Map<string, string>();
  private orphans: Array<{ seq: number; rec: FileRecord }> = [];
  private recSeq = 0;
  /** Records dropped because the kernel's queue overflowed (units running then say so). */
  overflows = 0;

  constructor(
    private readonly cfg: ChangesConfig,
    private readonly deps: { events: EventService; namespaces: NamespaceService; dataDir: string; log: Log },
  ) {}

  /** Chooses the mode: fanotify when configured or auto and it opens, else scan (auto, scan) or off. */
  start(): void {
    if (this.cfg.mode === 'off') return;
    const real = realpathSync.native(this.deps.dataDir);
    this.treesPrefix = `${real}/workspaces/`;
    if (this.cfg.mode === 'fanotify' || this.cfg.mode === 'auto') {
      try {
        this.watcher = FanotifyWatcher.open(real, this.treesPrefix, {
          records: (recs) => this.onRecords(recs),
          marker: (seq) => this.onMarker(seq),
          overflow: () => this.onOverflow(),
        });
        this.mode = 'fanotify';
        this.reason = '';
        return;
      } catch (err) {
        const why = (err as Error).message;
        if (this.cfg.mode === 'fanotify')
          throw new Error(`TROVE_CHANGES=fanotify: ${why} (fanotify needs root: CAP_SYS_ADMIN, Linux ≥ 5.17)`);
        this.deps.log.warn(
          { err: why },
          'change tracking: fanotify unavailable, using before/after scans of one-shot execs',
        );
        this.reason = `fanotify unavailable (${why})`;
      }
    }
    this.mode = 'scan';
  }

  status(): ChangeTrackingStatus {
    const limits: string[] = [];
    if (this.mode === 'off') limits.push(this.reason);
    if (this.mode === 'scan') {
      limits.push(
        `${this.reason ? `${this.reason}: ` : ''}one-shot execs are compared before/after (at most ${this.cfg.scanMaxFiles} entries each way; beyond that only a summary), in path order rather than the order of the changes; background processes' changes are not recorded`,
      );
    }
    return { mode: this.mode, limits, max_per_command: this.cfg.maxPerCommand };
  }

  async begin(owner: ChangeOwner, opts: { slots: boolean }): Promise<ChangeUnit> {
    if (this.mode === 'fanotify' && opts.slots) {
      const unit = new WatchUnit(this, owner, owner.kind === 'process' ? this.cfg.windowMs : null);
      return unit;
    }
    if ((this.mode === 'scan' || this.mode === 'fanotify') && owner.kind === 'exec') {
      const unit = new ScanUnit(this, owner);
      await unit.before();
      return unit;
    }
    return new NoopUnit();
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
  }

  // ---------------------------------------------------------------- fanotify units

  /** The unit owns `slot` from a marker on: every record queued after it. */
  attachSlot(unit: WatchUnit, slot: CgroupSlot): void {
    const key = slotKey(slot);
    if (!this.watcher) return;
    // Nobody holds the slot and no hand-over is pending: its previous command has ended and every record
    // it queued was read (its end waited for that), so the slot is this unit's from now on.
    if (!this.slotOwner.has(key) && ![...this.assignAt.values()].some((a) => a.key === key)) {
      this.slotOwner.set(key, unit);
      this.active.add(unit);
      return;
    }
    try {
      const { seq } = this.watcher.mark();
      this.assignAt.set(seq, { key, unit });
    } catch (err) {
      // Without a marker the slot is taken now: records its previous command still had queued may be credited here.
      this.deps.log.error(
        { err: (err as Error).message },
        'change tracking: cannot place a marker; slot taken over without one',
      );
      this.slotOwner.set(key, unit);
      this.active.add(unit);
      unit.overflowed = true;
    }
  }

  /** Resolves once every record queued before the call has been dispatched; false when that could not be known. */
  async drain(): Promise<boolean> {
    if (!this.watcher) return true;
    let done: Promise<void>;
    try {
      done = this.watcher.mark().done;
    } catch (err) {
      this.deps.log.error(
        { err: (err as Error).message },
        'change tracking: cannot place a marker at the end of a command',
      );
      return false;
    }
    let timer: NodeJS.Timeout | undefined;
    const read = await Promise.race([
      done.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), DRAIN_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!read)
      this.deps.log.error(
        {},
        `change tracking: the reader did not reach a command's end marker within ${DRAIN_TIMEOUT_MS} ms`,
      );
    return read;
  }

  /** After its last records: the unit gives its slots back and stops taking records by namespace. */
  detach(unit: WatchUnit): void {
    this.resolveOrphans();
    this.active.delete(unit);
    for (const [key, u] of this.slotOwner) if (u === unit) this.slotOwner.delete(key);
    for (const [seq, a] of this.assignAt) if (a.unit === unit) this.assignAt.delete(seq);
  }

  private onMarker(seq: number): void {
    const a = this.assignAt.get(seq);
    if (!a) return;
    this.assignAt.delete(seq);
    if (a.unit.ended) return;
    this.slotOwner.set(a.key, a.unit);
    this.active.add(a.unit);
  }

  private onOverflow(): void {
    this.overflows++;
    for (const u of this.active) u.overflowed = true;
    this.deps.log.warn(
      {},
      'change tracking: the kernel dropped file events (queue overflow); running commands report incomplete changes',
    );
  }

  private onRecords(recs: FileRecord[]): void {
    for (const rec of recs) {
      const seq = ++this.recSeq;
      this.learn(rec);
      let unit: WatchUnit | undefined;
      if (rec.group !== null) {
        unit = this.slotOwner.get(slotKeyOf(rec.group));
        // A slot nobody holds now: a spare waiting for its command, or a command that ended.
        if (!unit) continue;
      } else {
        const at = this.locate(rec);
        if (!at) {
          this.orphans.push({ seq, rec });
          if (this.orphans.length > MAX_ORPHANS) this.orphans.splice(0, this.orphans.length - MAX_ORPHANS);
          continue;
        }
        unit = this.byNamespace(at.workspaceId, at.namespace);
        if (!unit) continue;
      }
      unit.push(seq, rec);
    }
  }

  /** A directory's handle with its path, from a record that names it (created, removed or moved). */
  private learn(rec: FileRecord): void {
    if (rec.target === null) return;
    const path = this.fullPath(rec);
    if (path === null) return;
    if (this.learned.size >= MAX_LEARNED) this.learned.clear();
    this.learned.set(rec.target, path);
  }

  /** The entry's full path: as read, or through its directory's handle named by an earlier record. */
  private fullPath(rec: FileRecord): string | null {
    if (rec.path !== null) return rec.path;
    const dir = rec.dirHandle === null ? undefined : this.learned.get(rec.dirHandle);
    return dir === undefined || rec.name === null ? null : `${dir}/${rec.name}`;
  }

  /** Where a record's entry is: its namespace and namespace-relative path (null: unknown or not in a tree). */
  locate(rec: FileRecord): Located | null {
    const full = this.fullPath(rec);
    if (full === null || !full.startsWith(this.treesPrefix)) return null;
    // <ws>/namespaces/<ns>/<rel…>: the namespace root itself and the directories above are the server's.
    // Cut with indexOf rather than split and join: this runs for each of a command's records at its end.
    const from = this.treesPrefix.length;
    const ws = full.indexOf('/', from);
    if (ws < 0 || !full.startsWith(NAMESPACES_DIR, ws)) return null;
    const ns = full.indexOf('/', ws + NAMESPACES_DIR.length);
    if (ns < 0) return null;
    const rel = full.slice(ns + 1);
    if (rel === '' || ODD_SEGMENT.test(rel)) return null;
    return { workspaceId: full.slice(from, ws), namespace: full.slice(ws + NAMESPACES_DIR.length, ns), rel };
  }

  /** The running command of the namespace that a gone process's record is credited to (the oldest). */
  private byNamespace(workspaceId: string, namespace: string): WatchUnit | undefined {
    for (const u of this.active) if (u.owner.workspaceId === workspaceId && u.owner.namespace === namespace) return u;
    return undefined;
  }

  /** Records of gone processes whose directory was since named by a removal. */
  private resolveOrphans(): void {
    if (this.orphans.length === 0) return;
    const left: typeof this.orphans = [];
    for (const o of this.orphans) {
      const at = this.locate(o.rec);
      if (!at) {
        left.push(o);
        continue;
      }
      this.byNamespace(at.workspaceId, at.namespace)?.push(o.seq, o.rec);
    }
    this.orphans = left;
  }

  // ---------------------------------------------------------------- emitting

  /**
   * Appends a unit's changes: one event per recorded path, in order, then one files.changed summary when
   * the cap was reached or something is missing. Resolves once all are committed.
   */
  async emit(
    owner: ChangeOwner,
    changes: { recorded: PathChange[]; counts: ChangeCounts; total: number },
    extra: { approximate?: boolean; incomplete?: boolean; unresolved?: number; scan?: boolean },
  ): Promise<void> {
    const { workspaceId, namespace } = owner;
    const ids = owner.kind === 'exec' ? { exec_id: owner.id } : { process_id: owner.id };
    const sizes = sizesOf(this.deps.namespaces, owner, changes.recorded);
    const inputs: EmitInput[] = changes.recorded.map((c, i) => {
      const path = displayPath(c.rel);
      const data: Record<string, unknown> =
        c.kind === 'written'
          ? { path, size_bytes: sizes[i] ?? null, source: 'exec', ...ids }
          : { path, source: 'exec', ...ids };
      return { workspaceId, namespace, type: EVENT_OF[c.kind], data };
    });
    const truncated = changes.total > changes.recorded.length;
    const incomplete = Boolean(extra.incomplete) || (extra.unresolved ?? 0) > 0;
    if (truncated || incomplete) {
      inputs.push({
        workspaceId,
        namespace,
        type: 'files.changed',
        data: {
          source: 'exec',
          ...ids,
          ...changes.counts,
          recorded: changes.recorded.length,
          total: changes.total,
          truncated,
          ...(extra.approximate ? { approximate: true } : {}),
          ...(incomplete ? { incomplete: true } : {}),
          ...(extra.unresolved ? { unresolved: extra.unresolved } : {}),
          ...(extra.scan ? { scan: true } : {}),
        },
      });
    }
    // All queued at once, in order: the group commit appends them in a few transactions, in this order.
    await this.deps.events.emitAll(inputs);
  }

  get maxPerCommand(): number {
    return this.cfg.maxPerCommand;
  }

  get scanMaxFiles(): number {
    return this.cfg.scanMaxFiles;
  }

  get namespaces(): NamespaceService {
    return this.deps.namespaces;
  }

  get log(): Log {
    return this.deps.log;
  }
}

const EVENT_OF: Record<ChangeKind, string> = {
  written: 'file.written',
  deleted: 'file.deleted',
  dir_created: 'dir.created',
  dir_deleted: 'dir.deleted',
};

/**
 * `trove-<pid>-<n>/slot-<k>`: a slot's identity, from the last three components of its group as the addon
 * reports them (`trove-<pid>-<n>/<group>/slot-<k>`) without the group's name: slot numbers are unique in a
 * server's groups, and a pool sandbox's group is renamed to its namespace's when claimed (`pool-<n>` →
 * `ns-<hash>`, cgroups.ts adopt()), so the addon may report a slot under either name (a process it saw
 * before the rename).
 */
export function slotKey(slot: CgroupSlot): string {
  return slotKeyOf(slot.dirs[0]!);
}

/** slotKey() of a slot's directory, or of its group as the addon reports it (the same last three components). */
export function slotKeyOf(group: string): string {
  const parts = group.split('/');
  return `${parts[parts.length - 3]}/${parts[parts.length - 1]}`;
}

/**
 * size_bytes of the written files (null: gone since, or not a regular file): each directory opened once
 * beneath the namespace root, its entries looked at by name without following a link, all of one
 * directory in one native call.
 */
function sizesOf(namespaces: NamespaceService, owner: ChangeOwner, changes: PathChange[]): Array<number | null> {
  const out: Array<number | null> = new Array(changes.length).fill(null);
  if (!changes.some((c) => c.kind === 'written')) return out;
  // Parent directory → the written entries in it (their positions in `changes` and their names).
  const dirs = new Map<string, { at: number[]; names: string[] }>();
  changes.forEach((c, i) => {
    if (c.kind !== 'written') return;
    const slash = c.rel.lastIndexOf('/');
    const parent = slash < 0 ? '' : c.rel.slice(0, slash);
    let dir = dirs.get(parent);
    if (!dir) dirs.set(parent, (dir = { at: [], names: [] }));
    dir.at.push(i);
    dir.names.push(c.rel.slice(slash + 1));
  });
  const tree = namespaces.openTree(owner.workspaceId, owner.namespace);
  if (!tree) return out;
  try {
    for (const [parent, { at, names }] of dirs) {
      let fd: number;
      try {
        // Security: resolved beneath the root descriptor (a link the command left on the way stays inside).
        fd = openat2(tree.rootFd, parent === '' ? '.' : parent, O_RDONLY | O_DIRECTORY, 0, BENEATH);
      } catch {
        continue; // gone since, or not a directory any more
      }
      try {
        regularSizesAt(fd, names).forEach((size, k) => (out[at[k]!] = size));
      } catch {
        /* unreadable: sizes unknown */
      } finally {
        closeQuietly(fd);
      }
    }
  } finally {
    tree.close();
  }
  return out;
}

/** The change a record stands for, and whether it made a new name. */
function changeOf(mask: number): { kind: ChangeKind; created: boolean } | null {
  const dir = (mask & FAN_ONDIR) !== 0;
  if (mask & (FAN_DELETE | FAN_MOVED_FROM))
    return { kind: dir ? 'dir_deleted' : 'deleted', created: (mask & FAN_CREATE) !== 0 };
  if (mask & (FAN_CREATE | FAN_MOVED_TO))
    return { kind: dir ? 'dir_created' : 'written', created: (mask & FAN_CREATE) !== 0 };
  if (!dir) return { kind: 'written', created: false };
  return null;
}

/**
 * What a unit holds until its end (or the end of a window): the records, and the coalescing of those that
 * could be placed as they came. A record is coalesced on arrival when it follows the last one (records
 * come in queue order) and its path was read with it; otherwise (a gone process's record placed late, a
 * path known only through a directory handle, which a later record may name) the whole batch is coalesced
 * again at the end from the records in queue order, as before, so the result is the same either way.
 */
interface Pending {
  records: Array<{ seq: number; rec: FileRecord }>;
  co: Coalescer;
  unresolved: number;
  /** Coalesced on arrival so far (false: redo from `records` at the end). */
  live: boolean;
  lastSeq: number;
  dropped: number;
  overflowed: boolean;
}

function newPending(): Pending {
  return {
    records: [],
    co: new Coalescer(MAX_HELD),
    unresolved: 0,
    live: true,
    lastSeq: 0,
    dropped: 0,
    overflowed: false,
  };
}

/** One command under fanotify: its records coalesced as they come, emitted at its end (or per window). */
class WatchUnit implements ChangeUnit {
  ended = false;
  private pending = newPending();
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly tracker: ChangeTracker,
    readonly owner: ChangeOwner,
    /** Background processes: records go out this often; null (one-shot exec): at the end. */
    private readonly windowMs: number | null,
  ) {}

  get overflowed(): boolean {
    return this.pending.overflowed;
  }

  set overflowed(v: boolean) {
    this.pending.overflowed = v;
  }

  attach(slot: CgroupSlot | null): void {
    if (slot && !this.ended) this.tracker.attachSlot(this, slot);
  }

  push(seq: number, rec: FileRecord): void {
    if (this.ended) return;
    const p = this.pending;
    if (p.records.length >= MAX_HELD) {
      p.dropped++;
      return;
    }
    p.records.push({ seq, rec });
    if (p.live) {
      if (seq > p.lastSeq && rec.path !== null) {
        p.lastSeq = seq;
        this.place(p, rec);
      } else {
        p.live = false;
      }
    }
    if (this.windowMs !== null && this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flushWindow();
      }, this.windowMs);
    }
  }

  /** One record into `p`'s coalescing. */
  private place(p: Pending, rec: FileRecord): void {
    const change = changeOf(rec.mask);
    if (!change) return;
    const at = this.tracker.locate(rec);
    if (!at) {
      p.unresolved++;
      return;
    }
    // Security: a record placed by namespace or slot must still be in this command's namespace.
    if (at.workspaceId !== this.owner.workspaceId || at.namespace !== this.owner.namespace) return;
    p.co.add(at.rel, change.kind, change.created);
  }

  private flushWindow(): void {
    const batch = this.take();
    this.chain = this.chain
      .then(() => this.emitBatch(batch))
      .catch((err: unknown) => {
        this.tracker.log.error(
          { err, process_id: this.owner.id },
          'change events of a background process could not be recorded',
        );
      });
  }

  private take(): Pending {
    const out = this.pending;
    this.pending = newPending();
    return out;
  }

  private async emitBatch(batch: Pending): Promise<void> {
    if (batch.records.length === 0 && batch.dropped === 0 && !batch.overflowed) return;
    if (!batch.live) {
      // Records of gone processes placed late (orphans) go back to where they happened, and paths known
      // only by a directory handle are looked up now that more handles are known.
      batch.records.sort((a, b) => a.seq - b.seq);
      batch.co = new Coalescer(MAX_HELD);
      batch.unresolved = 0;
      for (const { rec } of batch.records) this.place(batch, rec);
    }
    const result = batch.co.result(this.tracker.maxPerCommand);
    await this.tracker.emit(this.owner, result, {
      approximate: result.approximate || batch.dropped > 0,
      incomplete: batch.overflowed || batch.dropped > 0,
      unresolved: batch.unresolved,
    });
  }

  async end(): Promise<void> {
    if (this.ended) return;
    // Every record queued before now (the command's processes are gone) is dispatched after this.
    if (!(await this.tracker.drain())) this.overflowed = true;
    this.tracker.detach(this);
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.take();
    this.chain = this.chain.then(() => this.emitBatch(batch));
    await this.chain;
  }
}

/** One-shot exec without fanotify: the namespace walked before and after. */
class ScanUnit implements ChangeUnit {
  private first: ScanResult | null = null;

  constructor(
    private readonly tracker: ChangeTracker,
    private readonly owner: ChangeOwner,
  ) {}

  async before(): Promise<void> {
    this.first = await scanNamespace(this.tracker.namespaces, this.owner, this.tracker.scanMaxFiles);
  }

  attach(): void {}

  async end(): Promise<void> {
    const first = this.first;
    if (!first) return;
    this.first = null;
    const second = await scanNamespace(this.tracker.namespaces, this.owner, this.tracker.scanMaxFiles);
    const changes = diffScans(first, second);
    const co = new Coalescer(MAX_HELD);
    for (const c of changes) co.add(c.rel, c.kind, false);
    const result = co.result(this.tracker.maxPerCommand);
    await this.tracker.emit(this.owner, result, { incomplete: !first.complete || !second.complete, scan: true });
  }
}
