/**
 * Per-exec cgroup v1 `memory` and `pids` groups, when the server may create
 * them (root, writable cgroupfs). rlimits are per process; only a cgroup caps
 * the sum of a command's processes (a fork bomb, or many small allocations).
 *
 * Groups are created below the server's own cgroup (so limits the operator
 * put on the server still apply to its sandboxes) as
 * `<own cgroup>/trove-<server pid>-<pool>/slot-<n>` and reused between execs: a
 * slot goes back to the pool only once it holds no process.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Controller = 'memory' | 'pids';

export interface CgroupLimits {
  memoryBytes: number;
  maxProcs: number;
}

export interface CgroupSlot {
  id: number;
  dirs: Partial<Record<Controller, string>>;
}

interface Log {
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

const PREFIX = 'trove-';
/** Several pools may live in one process (tests); each gets its own directory. */
let instances = 0;

/** Host directory of this process's cgroup for each v1 controller that is mounted. */
export function ownCgroupDirs(): Partial<Record<Controller, string>> {
  const out: Partial<Record<Controller, string>> = {};
  let cgroups: string;
  let mountinfo: string;
  try {
    cgroups = readFileSync('/proc/self/cgroup', 'utf8');
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return out;
  }
  for (const line of cgroups.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const controllers = m[1]!.split(',');
    for (const c of ['memory', 'pids'] as const) {
      if (!controllers.includes(c)) continue;
      const mount = findMount(mountinfo, c);
      if (!mount) continue;
      let rel = m[2]!;
      // Inside a cgroup namespace the mount root may be a prefix of our path.
      if (mount.root !== '/' && rel.startsWith(mount.root)) rel = rel.slice(mount.root.length);
      out[c] = join(mount.point, rel);
    }
  }
  return out;
}

function findMount(mountinfo: string, controller: string): { point: string; root: string } | null {
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const [fstype, , superOpts] = post.split(' ');
    if (fstype !== 'cgroup' || !superOpts?.split(',').includes(controller)) continue;
    const f = pre.split(' ');
    return { root: unescapeMount(f[3]!), point: unescapeMount(f[4]!) };
  }
  return null;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readProcs(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** The slot's group directories, one per controller: what the launcher process needs to attach and kill. */
export function slotDirs(slot: CgroupSlot): string[] {
  return Object.values(slot.dirs).filter((d): d is string => typeof d === 'string');
}

/** Moves `pid` into each group; its children inherit them. */
export function attachToCgroups(dirs: readonly string[], pid: number): void {
  for (const dir of dirs) writeFileSync(join(dir, 'cgroup.procs'), String(pid));
}

/** True when no process is left in any of the groups. */
export function cgroupsEmpty(dirs: readonly string[]): boolean {
  return dirs.every((d) => readProcs(d).length === 0);
}

/** A memory group's OOM-kill counter (memory.oom_control `oom_kill`). */
export function oomKillCount(memoryDir: string): number {
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(memoryDir, 'memory.oom_control'), 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** SIGKILLs every process of each group. */
export function killCgroups(dirs: readonly string[]): void {
  for (const dir of dirs) {
    for (const pid of readProcs(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class CgroupPool {
  private readonly free: CgroupSlot[] = [];
  private readonly all = new Set<CgroupSlot>();
  private nextId = 0;
  private closed = false;

  private constructor(
    /** Per-controller `<own cgroup>/trove-<pid>-<n>` directories. */
    private readonly bases: Partial<Record<Controller, string>>,
    private readonly limits: CgroupLimits,
    private readonly log: Log,
  ) {}

  /**
   * Creates the pool, or returns null with the reason when cgroup v1
   * memory/pids cannot be written here (not root, cgroup v2 only, read-only
   * cgroupfs in a container). Also removes groups left by a crashed server.
   */
  static create(limits: CgroupLimits, log: Log): { pool: CgroupPool | null; reason?: string } {
    const own = ownCgroupDirs();
    const bases: Partial<Record<Controller, string>> = {};
    const problems: string[] = [];
    const instance = instances++;
    for (const c of ['memory', 'pids'] as const) {
      const parent = own[c];
      if (!parent) {
        problems.push(`no cgroup v1 ${c} controller mounted`);
        continue;
      }
      removeStale(parent, log);
      const base = join(parent, `${PREFIX}${process.pid}-${instance}`);
      try {
        mkdirSync(base);
        bases[c] = base;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') bases[c] = base;
        else problems.push(`cannot create ${base} (${code})`);
      }
    }
    if (!bases.memory && !bases.pids) return { pool: null, reason: problems.join('; ') };
    return { pool: new CgroupPool(bases, limits, log), reason: problems.length ? problems.join('; ') : undefined };
  }

  /** The pool's own `trove-<pid>-<n>` directories (for the reaper). */
  get baseDirs(): string[] {
    return Object.values(this.bases).filter((d): d is string => Boolean(d));
  }

  get controllers(): Controller[] {
    return (Object.keys(this.bases) as Controller[]).filter((c) => this.bases[c]);
  }

  acquire(): CgroupSlot {
    if (this.closed) throw new Error('cgroup pool closed');
    return this.free.pop() ?? this.createSlot();
  }

  private createSlot(): CgroupSlot {
    const id = this.nextId++;
    const slot: CgroupSlot = { id, dirs: {} };
    try {
      if (this.bases.memory) {
        const dir = join(this.bases.memory, `slot-${id}`);
        makeSlotDir(dir);
        slot.dirs.memory = dir;
        writeFileSync(join(dir, 'memory.limit_in_bytes'), String(this.limits.memoryBytes));
        // memsw exists only with swap accounting; it must be >= the RAM limit, so it is set second.
        if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) {
          try {
            writeFileSync(join(dir, 'memory.memsw.limit_in_bytes'), String(this.limits.memoryBytes));
          } catch {
            /* swap accounting disabled at boot: RAM limit alone */
          }
        }
      }
      if (this.bases.pids) {
        const dir = join(this.bases.pids, `slot-${id}`);
        makeSlotDir(dir);
        slot.dirs.pids = dir;
        writeFileSync(join(dir, 'pids.max'), String(this.limits.maxProcs));
      }
    } catch (err) {
      this.removeSlotDirs(slot);
      throw err;
    }
    this.all.add(slot);
    return slot;
  }

  /** True when no process is left in the slot. */
  isEmpty(slot: CgroupSlot): boolean {
    return cgroupsEmpty(slotDirs(slot));
  }

  /** SIGKILLs everything in the slot. */
  kill(slot: CgroupSlot): void {
    killCgroups(slotDirs(slot));
  }

  /**
   * Waits until the slot is empty (killing stragglers) and returns it to the
   * pool. A slot that will not empty is retired, never reused.
   */
  async release(slot: CgroupSlot, opts: { graceMs?: number; knownEmpty?: boolean } = {}): Promise<boolean> {
    const deadline = Date.now() + (opts.graceMs ?? 2000);
    while (!(opts.knownEmpty === true || this.isEmpty(slot))) {
      if (Date.now() > deadline) {
        this.all.delete(slot);
        this.log.error({ slot: slot.dirs }, 'exec cgroup still has processes after kill; retiring it');
        return false;
      }
      this.kill(slot);
      await sleep(5);
    }
    if (this.closed) this.removeSlotDirs(slot);
    else this.free.push(slot);
    return true;
  }

  private removeSlotDirs(slot: CgroupSlot): void {
    for (const dir of Object.values(slot.dirs)) {
      try {
        rmdirSync(dir);
      } catch {
        /* busy or gone */
      }
    }
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
      this.removeSlotDirs(slot);
    }
    this.all.clear();
    this.free.length = 0;
    for (const base of Object.values(this.bases)) {
      try {
        rmdirSync(base);
      } catch {
        /* a retired slot is still busy */
      }
    }
  }
}

/**
 * Creates a slot directory. One that exists already was left by an earlier
 * process that had our pid (pids are reused; its reaper may have been killed
 * too): its processes are not ours to keep, so they are killed and the group
 * is reused, rather than failing every exec with EEXIST.
 */
function makeSlotDir(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    killCgroups([dir]);
  }
}

/** Removes `trove-<pid>-<n>` groups of servers that are no longer running. */
function removeStale(parent: string, log: Log): void {
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of entries) {
    const m = new RegExp(`^${PREFIX}(\\d+)-\\d+$`).exec(name);
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    const base = join(parent, name);
    try {
      for (const slot of readdirSync(base, { withFileTypes: true })) {
        if (!slot.isDirectory()) continue;
        killCgroups([join(base, slot.name)]);
        try {
          rmdirSync(join(base, slot.name));
        } catch {
          /* processes still exiting: retried on the next start */
        }
      }
      rmdirSync(base);
    } catch (err) {
      log.warn({ dir: base, err: (err as Error).message }, 'could not remove a stale exec cgroup');
    }
  }
}
