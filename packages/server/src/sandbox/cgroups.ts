/**
 * Exec cgroups, when the server may create them (root, writable cgroupfs).
 * rlimits are per process; only a cgroup caps the sum of many processes (a
 * fork bomb, many small allocations), and only a group above the execs caps
 * what a tenant gets by running many of them at once.
 *
 * Two levels, below a base group of this server:
 *
 *   <base>/ns-<hash>           one per namespace: its memory, pids and CPU weight
 *   <base>/ns-<hash>/slot-<k>  one per running exec: the per-exec caps; every
 *                              process of the exec is in it, so it can be
 *                              counted, OOM-attributed and killed as a whole
 *
 * cgroup v1: `<base>` is `<server's own group>/trove-<pid>-<n>` in each of the
 * memory, pids and cpu hierarchies. cgroup v2: `<parent>/trove-<pid>-<n>`,
 * where parent is a delegated subtree (TROVE_CGROUP_PARENT) or the server's
 * own group. Slots are reused between execs of their namespace: one goes back
 * only once it holds no process. Idle namespace groups are removed (LRU).
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pidAlive, procStat } from './pids.js';

export type Controller = 'memory' | 'pids' | 'cpu';
export type CgroupMode = 'v1' | 'v2' | 'none';

const CONTROLLERS: readonly Controller[] = ['memory', 'pids', 'cpu'];

export interface CgroupLimits {
  /** Per exec: memory of all its processes together. */
  memoryBytes: number;
  /** Per exec: processes (and threads) at once. */
  maxProcs: number;
  /** Per namespace, all its running execs together; 0 or absent = no limit of its own. */
  nsMemoryBytes?: number;
  nsMaxProcs?: number;
  /** A namespace's CPU weight against the others (v2 scale 1–10000, 100 = even); 0 or absent = the kernel's default. */
  nsCpuWeight?: number;
  /**
   * The base group's CPU weight (all exec groups together) against its siblings: on v1 the processes of the
   * server's own group (each counts as 100), on v2 the server's leaf group. 0 or absent = the kernel's default.
   */
  execCpuWeight?: number;
}

export interface CgroupSetup {
  /**
   * cgroup v2 only: the group (a directory in a cgroup2 file system, delegated
   * to this server) under which exec groups are made. Absent: cgroup v1 when
   * its memory or pids controller is mounted, else the server's own v2 group.
   */
  parent?: string | null;
  /**
   * Idle namespace groups kept for reuse (beyond, the least recently used go); default 64. The runner keeps
   * one per namespace whose sandbox may be warm: removing and remaking a group costs a dozen cgroupfs calls on
   * the server's thread, for a namespace that is likely to run again.
   */
  keepIdle?: number;
}

/** What the exec cgroups do on this host (SandboxRunner.status().cgroups; the admin health view). */
export interface CgroupStatus {
  mode: CgroupMode;
  /** Directory the server's groups are made in (v1: the memory hierarchy's, or the first one's). */
  parent: string | null;
  /** Controllers whose limits are applied. */
  controllers: Controller[];
  /** What is not available, one operator-facing line each (no host paths: parent names the place); empty when everything works. */
  missing: string[];
}

export interface CgroupSlot {
  id: number;
  /** The slot's group directories: one per v1 hierarchy, one in v2. */
  dirs: string[];
  /** The one whose OOM counters belong to this exec (null without the memory controller). */
  memoryDir: string | null;
  v2: boolean;
  /** Its namespace group's name (`ns-<hash>`). */
  group: string;
}

interface Log {
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

/** One hierarchy the server's groups live in: v1 has one per mounted controller, v2 exactly one. */
interface Root {
  base: string;
  controllers: Controller[];
}

interface NsGroup {
  name: string;
  /** Per root, in the order of the pool's roots. */
  dirs: string[];
  free: CgroupSlot[];
  /** Slots handed out and not yet released. */
  active: number;
  lastUsed: number;
}

const PREFIX = 'trove-';
const CGROUP2_SUPER_MAGIC = 0x63677270;
/** Idle namespace groups kept for reuse by default (CgroupSetup.keepIdle); beyond, the least recently used go. */
const MAX_IDLE_GROUPS = 64;
/** An idle namespace group older than this is removed (at the next release of any slot). */
const IDLE_GROUP_MS = 5 * 60_000;
/** Several pools may live in one process (tests); each gets its own directory. */
let instances = 0;

/** nsGroupName's answers for the namespaces in use (cleared when full). */
const groupNames = new Map<string, string>();
const GROUP_NAMES_KEPT = 4096;

/** The namespace group's directory name: a hash, so no tenant-chosen text ends up in a path. */
export function nsGroupName(workspaceId: string, namespace: string): string {
  // Asked several times per call (lease, slot, spare, release): the hash is kept for the namespaces in use.
  const key = `${workspaceId}\0${namespace}`;
  let name = groupNames.get(key);
  if (name === undefined) {
    name = `ns-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
    if (groupNames.size >= GROUP_NAMES_KEPT) groupNames.clear();
    groupNames.set(key, name);
  }
  return name;
}

// ------------------------------------------------------------------ discovery

interface MountEntry {
  root: string;
  point: string;
  fstype: string;
  superOpts: string[];
}

function mounts(): MountEntry[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const [fstype, , superOpts] = post.split(' ');
    const f = pre.split(' ');
    out.push({
      root: unescapeMount(f[3]!),
      point: unescapeMount(f[4]!),
      fstype: fstype!,
      superOpts: (superOpts ?? '').split(','),
    });
  }
  return out;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The host directory of a cgroup path, given the mount of its hierarchy. */
function hostDir(mount: MountEntry, rel: string): string {
  // Inside a cgroup namespace the mount root may be a prefix of our path.
  if (mount.root !== '/' && rel.startsWith(mount.root)) rel = rel.slice(mount.root.length);
  return join(mount.point, rel);
}

function ownCgroupLines(): Array<{ controllers: string[]; path: string }> {
  try {
    return readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .map((line) => /^\d+:([^:]*):(.*)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ controllers: m[1] ? m[1].split(',') : [], path: m[2]! }));
  } catch {
    return [];
  }
}

/** Host directory of this process's cgroup for each v1 controller that is mounted. */
export function ownCgroupDirs(): Partial<Record<Controller, string>> {
  const out: Partial<Record<Controller, string>> = {};
  const all = mounts();
  for (const line of ownCgroupLines()) {
    for (const c of CONTROLLERS) {
      if (!line.controllers.includes(c)) continue;
      const mount = all.find((m) => m.fstype === 'cgroup' && m.superOpts.includes(c));
      if (mount) out[c] = hostDir(mount, line.path);
    }
  }
  return out;
}

/** Host directory of this process's cgroup v2 group, when a cgroup2 hierarchy is mounted. */
export function ownCgroupV2Dir(): string | null {
  const line = ownCgroupLines().find((l) => l.controllers.length === 0 && l.path.startsWith('/'));
  const mount = mounts().find((m) => m.fstype === 'cgroup2');
  return line && mount ? hostDir(mount, line.path) : null;
}

function isCgroup2(dir: string): boolean {
  try {
    return statfsSync(dir).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------ group files

function readProcs(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function readWords(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/** The numeric fields of a flat-keyed cgroup file (`memory.events`, `memory.oom_control`). */
function readKeyed(file: string): Record<string, number> {
  const out: Record<string, number> = {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const m of text.matchAll(/^(\S+) (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** Every process (host pid) in the groups: the union over v1's hierarchies. */
export function cgroupPids(dirs: readonly string[]): number[] {
  const all = new Set<number>();
  for (const dir of dirs) for (const pid of readProcs(dir)) all.add(pid);
  return [...all];
}

/** True when no process is left in any of the groups (v2: none below them either). */
export function cgroupsEmpty(dirs: readonly string[], v2 = false): boolean {
  if (v2) {
    return dirs.every((d) => {
      const events = readKeyed(join(d, 'cgroup.events'));
      return events.populated === undefined ? readProcs(d).length === 0 : events.populated === 0;
    });
  }
  return dirs.every((d) => readProcs(d).length === 0);
}

/**
 * SIGKILLs every process of each group. v2: `cgroup.kill`, which the kernel
 * applies to the whole subtree and to processes forked while it runs; v1 (and
 * v2 before Linux 5.14) signals each listed pid, so a caller loops until empty.
 */
export function killCgroups(dirs: readonly string[], v2 = false): void {
  for (const dir of dirs) {
    if (v2) {
      try {
        writeFileSync(join(dir, 'cgroup.kill'), '1');
        continue;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') continue;
      }
    }
    for (const pid of readProcs(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

/** Counters of a memory group that say whether the OOM killer acted in it. */
export interface MemoryCounters {
  /** Processes of the group the OOM killer killed. */
  oomKills: number;
  /** v2: times the group's own limit was reached (not a parent's); v1: 0 (see peakReachedLimit). */
  limitHits: number;
}

/** v2: `memory.events` (`oom_kill`, `oom`); v1: `memory.oom_control` (`oom_kill`). */
export function memoryCounters(memoryDir: string, v2 = false): MemoryCounters {
  if (v2) {
    const e = readKeyed(join(memoryDir, 'memory.events'));
    return { oomKills: e.oom_kill ?? 0, limitHits: e.oom ?? 0 };
  }
  return { oomKills: readKeyed(join(memoryDir, 'memory.oom_control')).oom_kill ?? 0, limitHits: 0 };
}

/** A charge that fails is at most a huge page (2 MiB); a usage peak this close to the limit reached it. */
const PEAK_MARGIN_BYTES = 4 * 1024 * 1024;

/**
 * v1: whether the group's usage peak (reset when its slot is released) came
 * within a failed charge of its own limit. v1 has no dependable "limit
 * reached" count: with swap accounting the memory+swap counter is charged
 * first, so `memory.failcnt` stays 0, and `memory.memsw.failcnt` stayed 0 too
 * on the kernel we tested (Linux 6.18).
 */
export function peakReachedLimit(memoryDir: string): boolean {
  const num = (file: string) => Number(readWords(join(memoryDir, file))[0] ?? NaN);
  const memsw = swapAccounted(memoryDir);
  const peak = num(memsw ? 'memory.memsw.max_usage_in_bytes' : 'memory.max_usage_in_bytes');
  const limit = num(memsw ? 'memory.memsw.limit_in_bytes' : 'memory.limit_in_bytes');
  return Number.isFinite(peak) && Number.isFinite(limit) && peak >= limit - PEAK_MARGIN_BYTES;
}

let swapAccounting: boolean | undefined;

/** v1: whether memory+swap is accounted (its files exist in every memory group): a boot setting, looked at once. */
function swapAccounted(memoryDir: string): boolean {
  swapAccounting ??= existsSync(join(memoryDir, 'memory.memsw.max_usage_in_bytes'));
  return swapAccounting;
}

/**
 * v1: the usage peaks of the slot group `memoryDir` that peakReachedLimit reads. The exec's `trove-enter`
 * resets them (writes 0) once it is in the slot, before its command (its own few pages count, as they count
 * against the limit), off the server's thread. The memory+swap one exists only with swap accounting.
 */
export function peakFiles(memoryDir: string): string[] {
  const files = [join(memoryDir, 'memory.max_usage_in_bytes')];
  if (swapAccounted(memoryDir)) files.push(join(memoryDir, 'memory.memsw.max_usage_in_bytes'));
  return files;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes a limit file; an `optional` one only when it exists (swap files exist only with swap accounting). */
function writeLimit(dir: string, file: string, value: string | number, optional = false): void {
  const path = join(dir, file);
  if (optional && !existsSync(path)) return;
  writeFileSync(path, String(value));
}

function v1Shares(weight: number): number {
  return Math.min(262_144, Math.max(2, Math.round((weight * 1024) / 100)));
}

// ------------------------------------------------------------------ pool

export class CgroupPool {
  private readonly groups = new Map<string, NsGroup>();
  private readonly all = new Set<CgroupSlot>();
  private nextId = 0;
  private closed = false;

  private constructor(
    private readonly version: 1 | 2,
    private readonly roots: Root[],
    private readonly limits: CgroupLimits,
    private readonly log: Log,
    readonly status: CgroupStatus,
    private readonly keepIdle: number,
  ) {
    const weight = limits.execCpuWeight;
    if (!weight) return;
    for (const root of roots) {
      if (!root.controllers.includes('cpu')) continue;
      try {
        this.writeCpuWeight(root.base, weight);
      } catch (err) {
        log.warn(
          { err: (err as Error).message },
          "cannot set the exec sandboxes' CPU weight; the kernel's default applies",
        );
      }
    }
  }

  /** A group's CPU weight (v2 scale 1–10000): `cpu.weight` on v2, `cpu.shares` on v1. */
  private writeCpuWeight(dir: string, weight: number): void {
    if (this.version === 2) writeLimit(dir, 'cpu.weight', Math.min(10_000, Math.max(1, weight)));
    else writeLimit(dir, 'cpu.shares', v1Shares(weight));
  }

  /**
   * Creates the pool, or returns null with the reason when no cgroup can be
   * used here (not root, read-only cgroupfs in a container, nothing mounted).
   * `status` says what is used and what is missing in both cases. Also removes
   * groups left by a crashed server.
   */
  static create(
    limits: CgroupLimits,
    log: Log,
    setup: CgroupSetup = {},
  ): { pool: CgroupPool | null; reason?: string; status: CgroupStatus } {
    const instance = instances++;
    const own = ownCgroupDirs();
    const keepIdle = Math.max(MAX_IDLE_GROUPS, setup.keepIdle ?? 0);
    if (!setup.parent && (own.memory || own.pids)) return CgroupPool.createV1(own, instance, limits, log, keepIdle);
    const parent = setup.parent ? resolve(setup.parent) : ownCgroupV2Dir();
    if (!parent) {
      const reason = 'no cgroup v1 memory or pids controller and no cgroup2 hierarchy mounted';
      return { pool: null, reason, status: { mode: 'none', parent: null, controllers: [], missing: [reason] } };
    }
    return CgroupPool.createV2(parent, !setup.parent, instance, limits, log, keepIdle);
  }

  private static createV1(
    own: Partial<Record<Controller, string>>,
    instance: number,
    limits: CgroupLimits,
    log: Log,
    keepIdle: number,
  ) {
    const missing: string[] = [];
    const roots: Root[] = [];
    for (const c of CONTROLLERS) {
      const parent = own[c];
      if (!parent) {
        missing.push(`${c}: no cgroup v1 ${c} controller mounted`);
        continue;
      }
      // Controllers mounted together (memory,pids) share one hierarchy: one group serves both.
      const same = roots.find((r) => dirname(r.base) === parent);
      if (same) {
        same.controllers.push(c);
        continue;
      }
      removeStale(parent, log);
      const base = join(parent, `${PREFIX}${process.pid}-${instance}`);
      try {
        mkdirSync(base);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') {
          missing.push(`${c}: cannot create the server's group in the v1 ${c} hierarchy (${code})`);
          continue;
        }
      }
      roots.push({ base, controllers: [c] });
    }
    const controllers = roots.flatMap((r) => r.controllers);
    const status: CgroupStatus = {
      mode: controllers.includes('memory') || controllers.includes('pids') ? 'v1' : 'none',
      parent: roots[0] ? dirname(roots[0].base) : null,
      controllers,
      missing,
    };
    if (status.mode === 'none') {
      for (const r of roots) tryRmdir(r.base);
      return { pool: null, reason: missing.join('; '), status: { ...status, parent: null, controllers: [] } };
    }
    return {
      pool: new CgroupPool(1, roots, limits, log, status, keepIdle),
      reason: missing.length ? missing.join('; ') : undefined,
      status,
    };
  }

  private static createV2(
    parent: string,
    ownGroup: boolean,
    instance: number,
    limits: CgroupLimits,
    log: Log,
    keepIdle: number,
  ) {
    const none = (reason: string) => ({
      pool: null,
      reason,
      status: { mode: 'none' as const, parent, controllers: [], missing: [reason] },
    });
    if (!isCgroup2(parent)) return none('TROVE_CGROUP_PARENT is not a directory of a cgroup2 file system');
    const missing: string[] = [];
    removeStale(parent, log);
    const available = readWords(join(parent, 'cgroup.controllers'));
    const wanted = CONTROLLERS.filter((c) => available.includes(c));
    for (const c of CONTROLLERS) {
      if (!available.includes(c)) {
        missing.push(
          `${c}: not delegated to the parent group (its own parent's cgroup.subtree_control lacks it); its limits are skipped`,
        );
      }
    }
    let enabled = enableControllers(parent, wanted);
    if (enabled.error === 'EBUSY' && ownGroup) {
      // No internal processes in v2: a group that hands controllers to children must hold no process
      // itself. Our own group holds us, so we move into a leaf of it (as systemd's Delegate= expects).
      const moved = vacate(parent);
      enabled = enableControllers(parent, wanted);
      if (enabled.error) undoVacate(parent, moved);
    }
    if (enabled.error) {
      const others = readProcs(parent);
      const why =
        enabled.error === 'EBUSY'
          ? `the parent group holds other processes (${others.slice(0, 5).join(', ')}${others.length > 5 ? ', …' : ''}); give the server an empty delegated group with TROVE_CGROUP_PARENT`
          : `cannot enable it in the parent group's cgroup.subtree_control (${enabled.error})`;
      for (const c of wanted) missing.push(`${c}: ${why}; its limits are skipped`);
    }
    const base = join(parent, `${PREFIX}${process.pid}-${instance}`);
    try {
      mkdirSync(base);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') return none(`cannot create the server's group in the parent group (${code})`);
    }
    const delegated = enabled.error ? [] : enabled.controllers;
    const inBase = enableControllers(base, delegated);
    const controllers = inBase.error ? [] : inBase.controllers;
    if (inBase.error)
      missing.push(
        `cannot enable ${delegated.join(', ')} in the server's group (${inBase.error}); their limits are skipped`,
      );
    if (!existsSync(join(base, 'cgroup.kill')))
      missing.push('cgroup.kill (Linux 5.14+): execs are killed process by process');
    const status: CgroupStatus = { mode: 'v2', parent, controllers, missing };
    return {
      pool: new CgroupPool(2, [{ base, controllers }], limits, log, status, keepIdle),
      reason: missing.length ? missing.join('; ') : undefined,
      status,
    };
  }

  /** The pool's own `trove-<pid>-<n>` directories (for the reaper). */
  get baseDirs(): string[] {
    return this.roots.map((r) => r.base);
  }

  get controllers(): Controller[] {
    return this.roots.flatMap((r) => r.controllers);
  }

  get isV2(): boolean {
    return this.version === 2;
  }

  /** A group for one exec of the namespace `group` (nsGroupName()); created with its namespace group on first use. */
  acquire(group = 'ns-default'): CgroupSlot {
    if (this.closed) throw new Error('cgroup pool closed');
    let g = this.groups.get(group);
    if (g) this.groups.delete(group);
    else g = this.createGroup(group);
    // Re-inserted: the map's order is least recently used first.
    this.groups.set(group, g);
    g.lastUsed = Date.now();
    const slot = g.free.pop() ?? this.createSlot(g);
    g.active++;
    return slot;
  }

  /**
   * A pool sandbox's group (`from`, e.g. `pool-<n>`, holding its spare's slot) becomes the namespace group
   * `to` (nsGroupName()) when its sandbox is claimed: renamed in every hierarchy (a namespace's limits are
   * the same for all, so nothing else changes), its slots with it. Only cgroup v1 renames groups (v2
   * refuses), and only when `to` does not exist yet; false otherwise (the caller drops what is in `from`).
   */
  adopt(from: string, to: string): boolean {
    const g = this.groups.get(from);
    if (this.closed || this.version !== 1 || !g || this.groups.has(to)) return false;
    const dirs = g.dirs.map((d) => join(dirname(d), to));
    const done: number[] = [];
    try {
      g.dirs.forEach((d, i) => {
        renameSync(d, dirs[i]!);
        done.push(i);
      });
    } catch (err) {
      for (const i of done.reverse()) {
        try {
          renameSync(dirs[i]!, g.dirs[i]!);
        } catch {
          /* left under its new name: removed with the pool's base */
        }
      }
      this.log.warn({ err: (err as Error).message }, 'cannot rename a pool sandbox cgroup');
      return false;
    }
    const moved = (p: string) => {
      const i = g.dirs.findIndex((d) => p.startsWith(`${d}/`));
      return i < 0 ? p : join(dirs[i]!, basename(p));
    };
    for (const slot of this.all) {
      if (slot.group !== from) continue;
      slot.dirs = slot.dirs.map(moved);
      if (slot.memoryDir) slot.memoryDir = moved(slot.memoryDir);
      slot.group = to;
    }
    this.groups.delete(from);
    g.name = to;
    g.dirs = dirs;
    g.lastUsed = Date.now();
    this.groups.set(to, g);
    return true;
  }

  private createGroup(name: string): NsGroup {
    const l = this.limits;
    const dirs: string[] = [];
    try {
      for (const root of this.roots) {
        const dir = join(root.base, name);
        makeGroupDir(dir, this.version === 2);
        dirs.push(dir);
        for (const c of root.controllers) {
          if (c === 'memory' && l.nsMemoryBytes) this.writeMemoryLimit(dir, l.nsMemoryBytes);
          if (c === 'pids' && l.nsMaxProcs) writeLimit(dir, 'pids.max', l.nsMaxProcs);
          if (c === 'cpu' && l.nsCpuWeight) this.writeCpuWeight(dir, l.nsCpuWeight);
        }
        if (this.version === 2) {
          // The per-exec caps below need these controllers handed down (cpu weight is per namespace only).
          const err = enableControllers(
            dir,
            root.controllers.filter((c) => c !== 'cpu'),
          ).error;
          if (err) throw new Error(`cannot enable controllers in ${dir}/cgroup.subtree_control (${err})`);
        }
      }
    } catch (err) {
      for (const d of dirs) tryRmdir(d);
      throw err;
    }
    return { name, dirs, free: [], active: 0, lastUsed: Date.now() };
  }

  private writeMemoryLimit(dir: string, bytes: number): void {
    if (this.version === 2) {
      writeLimit(dir, 'memory.max', bytes);
      // Swap is not a way around the cap (v1's memsw below does the same).
      writeLimit(dir, 'memory.swap.max', 0, true);
      return;
    }
    writeLimit(dir, 'memory.limit_in_bytes', bytes);
    // memsw exists only with swap accounting; it must be >= the RAM limit, so it is set second.
    try {
      writeLimit(dir, 'memory.memsw.limit_in_bytes', bytes, true);
    } catch {
      /* swap accounting disabled at boot: RAM limit alone */
    }
  }

  private createSlot(g: NsGroup): CgroupSlot {
    const id = this.nextId++;
    const slot: CgroupSlot = { id, dirs: [], memoryDir: null, v2: this.version === 2, group: g.name };
    try {
      this.roots.forEach((root, i) => {
        const dir = join(g.dirs[i]!, `slot-${id}`);
        makeSlotDir(dir, this.version === 2);
        slot.dirs.push(dir);
        if (root.controllers.includes('memory')) {
          this.writeMemoryLimit(dir, this.limits.memoryBytes);
          slot.memoryDir = dir;
        }
        if (root.controllers.includes('pids')) writeLimit(dir, 'pids.max', this.limits.maxProcs);
      });
    } catch (err) {
      for (const d of slot.dirs) tryRmdir(d);
      throw err;
    }
    this.all.add(slot);
    return slot;
  }

  /** True when no process is left in the slot. */
  isEmpty(slot: CgroupSlot): boolean {
    return cgroupsEmpty(slot.dirs, slot.v2);
  }

  /** SIGKILLs everything in the slot. */
  kill(slot: CgroupSlot): void {
    killCgroups(slot.dirs, slot.v2);
  }

  /**
   * Waits until the slot is empty (killing stragglers) and returns it to its
   * namespace group. A slot that will not empty is retired, never reused.
   */
  async release(slot: CgroupSlot, opts: { graceMs?: number; knownEmpty?: boolean } = {}): Promise<boolean> {
    const deadline = Date.now() + (opts.graceMs ?? 2000);
    const g = this.groups.get(slot.group);
    let ok = true;
    while (!(opts.knownEmpty === true || this.isEmpty(slot))) {
      if (Date.now() > deadline) {
        this.all.delete(slot);
        this.log.error({ slot: slot.dirs }, 'exec cgroup still has processes after kill; retiring it');
        ok = false;
        break;
      }
      this.kill(slot);
      await sleep(5);
    }
    if (ok) {
      if (this.closed || !g) removeDirs(slot.dirs);
      else g.free.push(slot);
    }
    if (g) {
      g.active--;
      g.lastUsed = Date.now();
    }
    if (!this.closed) this.evictIdle();
    return ok;
  }

  /** Removes namespace groups nobody used for a while, and the least recently used beyond MAX_IDLE_GROUPS. */
  private evictIdle(): void {
    const now = Date.now();
    let idle = 0;
    for (const g of this.groups.values()) if (g.active === 0) idle++;
    for (const g of [...this.groups.values()]) {
      if (g.active > 0) continue;
      if (idle <= this.keepIdle && now - g.lastUsed < IDLE_GROUP_MS) continue;
      this.removeGroup(g);
      idle--;
    }
  }

  private removeGroup(g: NsGroup): void {
    for (const slot of g.free) {
      this.all.delete(slot);
      removeDirs(slot.dirs);
    }
    g.free = [];
    this.groups.delete(g.name);
    // A retired slot still inside keeps its group; a later start's stale sweep removes both.
    removeDirs(g.dirs);
  }

  /** Kills everything left, removes every group. */
  async close(): Promise<void> {
    this.closed = true;
    for (const slot of this.all) this.kill(slot);
    const deadline = Date.now() + 2000;
    for (const slot of this.all) {
      while (!this.isEmpty(slot) && Date.now() < deadline) {
        this.kill(slot);
        await sleep(5);
      }
      removeDirs(slot.dirs);
    }
    this.all.clear();
    for (const g of this.groups.values()) removeDirs(g.dirs);
    this.groups.clear();
    for (const root of this.roots) tryRmdir(root.base);
  }
}

/** Enables controllers for a group's children; returns which are enabled, or the errno of the refusal. */
function enableControllers(dir: string, wanted: readonly Controller[]): { controllers: Controller[]; error?: string } {
  const have = readWords(join(dir, 'cgroup.subtree_control'));
  const add = wanted.filter((c) => !have.includes(c));
  if (add.length === 0) return { controllers: [...wanted] };
  try {
    writeFileSync(join(dir, 'cgroup.subtree_control'), add.map((c) => `+${c}`).join(' '));
    return { controllers: [...wanted] };
  } catch (err) {
    return {
      controllers: wanted.filter((c) => have.includes(c)),
      error: (err as NodeJS.ErrnoException).code ?? 'error',
    };
  }
}

function parentPid(pid: number): number {
  return Number(procStat(pid)?.[1] ?? 0);
}

function descendsFromUs(pid: number): boolean {
  for (let p = pid, depth = 0; p > 1 && depth < 64; depth++) {
    if (p === process.pid) return true;
    p = parentPid(p);
  }
  return false;
}

/**
 * Moves this server and its children (the launcher, the reaper) from `dir`
 * into the leaf `dir/trove-server-<pid>`; returns the pids moved.
 */
function vacate(dir: string): number[] {
  const leaf = join(dir, `${PREFIX}server-${process.pid}`);
  try {
    mkdirSync(leaf);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return [];
  }
  const moved: number[] = [];
  for (const pid of readProcs(dir)) {
    if (!descendsFromUs(pid)) continue;
    try {
      writeFileSync(join(leaf, 'cgroup.procs'), String(pid));
      moved.push(pid);
    } catch {
      /* exited meanwhile */
    }
  }
  return moved;
}

/** Other processes share the group, so the move bought nothing: put ours back as they were. */
function undoVacate(dir: string, moved: number[]): void {
  for (const pid of moved) {
    try {
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    } catch {
      /* exited */
    }
  }
  tryRmdir(join(dir, `${PREFIX}server-${process.pid}`));
}

function tryRmdir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

function removeDirs(dirs: readonly string[]): void {
  for (const dir of dirs) tryRmdir(dir);
}

/**
 * Creates a group directory. One that exists already was left by an earlier
 * process that had our pid (pids are reused; its reaper may have been killed
 * too): its processes are not ours to keep, so they are killed and the group
 * is reused, rather than failing every exec with EEXIST.
 */
function makeSlotDir(dir: string, v2: boolean): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    killCgroups([dir], v2);
  }
}

function makeGroupDir(dir: string, v2: boolean): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // v2 has no processes in an inner group; v1 might (an older layout put execs right there).
    if (!v2) killCgroups([dir]);
  }
}

/** Kills the processes of a group tree and removes it, deepest groups first. */
function removeTree(dir: string): boolean {
  let ok = true;
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) ok = removeTree(join(dir, e.name)) && ok;
    }
  } catch {
    /* gone */
  }
  killCgroups([dir], existsSync(join(dir, 'cgroup.kill')));
  return tryRmdir(dir) && ok;
}

/** Removes `trove-<pid>-<n>` groups (and v2 `trove-server-<pid>` leaves) of servers that are no longer running. */
function removeStale(parent: string, log: Log): void {
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of entries) {
    const m = new RegExp(`^${PREFIX}(?:(\\d+)-\\d+|server-(\\d+))$`).exec(name);
    if (!m) continue;
    const pid = Number(m[1] ?? m[2]);
    if (pid === process.pid || pidAlive(pid)) continue;
    const dir = join(parent, name);
    if (m[2]) {
      // A leaf the server had moved into: its children (a reaper) may still be finishing; removed when empty.
      tryRmdir(dir);
      continue;
    }
    if (!removeTree(dir))
      log.warn({ dir }, 'could not remove a stale exec cgroup (processes still exiting); retried at the next start');
  }
}
