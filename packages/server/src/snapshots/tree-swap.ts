/**
 * Atomic replacement of a namespace tree, crash-safe, with two renames.
 *
 * The namespace root stays a real directory at a fixed path. Work happens in
 * `<workspace>/.trees/` (a sibling of `namespaces/`, so it can never be taken
 * for a namespace), and the directory names there are the journal:
 *
 *   <id>-new-<ns>   staging tree: extracted and flushed before any swap
 *   <id>-old-<ns>   the previous tree, moved aside by the first rename
 *   <id>-stray-<ns> an empty root recreated between the two renames (discarded)
 *
 * Swap = rename(root → old), rename(new → root). The second rename is the
 * commit point. Recovery reads the names: new+old → roll back (old returns
 * to the root); old alone → committed, finish deleting it; new alone →
 * never swapped, delete it. So a crash at any moment leaves the old tree or
 * the new one, never a mix.
 *
 * Every name is handled relative to descriptors of `namespaces/` and
 * `.trees/` (renameat2, mkdirat), and every tree is removed through
 * descriptors (tree/walk.ts removeEntry): an old tree may still hold what a
 * tenant process made or is making (links out of the tree, FIFOs), and none
 * of it is ever followed.
 */
import fs, { promises as fsp } from 'node:fs';
import { spawn } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DirReader, closeQuietly, openChildDir, removeEntry, walkTree } from '../tree/walk.js';
import {
  BENEATH_NO_LINKS,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_RDONLY,
  errCode,
  fstatat,
  mkdirat,
  openat2,
  renameat2,
} from '../tree/sys.js';
import { fsyncFd } from '../tree/fd-io.js';
import { restorePhase } from './restore-phases.js';

export const TREES_DIR = '.trees';
const NAME_RE = /^([0-9a-f]{16})-(new|old|stray)-(.+)$/;
/** An uploaded archive being normalised (archive.ts normaliseArchive): never a namespace's tree. */
const IMPORT_RE = /^import-([0-9a-f]{16})$/;

/**
 * The lock an import holds on its staging tree `import-<id>` while it works,
 * so that start-up recovery on another node leaves it alone. `:` cannot occur
 * in a namespace name, so this never collides with a namespace's lock.
 */
export function importLockName(id: string): string {
  return `import:${id}`;
}

/** `<workspace>/.trees` for `<workspace>/namespaces`. */
export function treesDirFor(namespacesDir: string): string {
  return join(dirname(namespacesDir), TREES_DIR);
}

/** Opens a directory the server made (`namespaces/`, `.trees/`): no component of it is the tenant's. */
function openServerDir(path: string): number {
  return fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
}

/** A restore in progress: descriptors of both work directories and of the staging root. close() when done. */
export class SwapPlan {
  constructor(
    readonly id: string,
    /** The namespace name (the root's name in `namespaces/`). */
    readonly ns: string,
    readonly nsDirFd: number,
    readonly treesFd: number,
    /** The staging root, open (-1 for a plan rebuilt by recovery). */
    readonly stagingFd: number,
  ) {}

  get stagingName(): string {
    return `${this.id}-new-${this.ns}`;
  }

  get oldName(): string {
    return `${this.id}-old-${this.ns}`;
  }

  get strayName(): string {
    return `${this.id}-stray-${this.ns}`;
  }

  close(): void {
    if (this.stagingFd >= 0) closeQuietly(this.stagingFd);
    closeQuietly(this.nsDirFd);
    closeQuietly(this.treesFd);
  }
}

/** How a namespace root is made: a plain directory, or a limited btrfs subvolume (tree/hard-quota.ts). */
export interface RootMaker {
  makeRoot(parentFd: number, name: string): void;
  applyLimit(rootFd: number): boolean;
}

const plainRoots: RootMaker = {
  makeRoot: (parentFd, name) => mkdirat(parentFd, name, 0o700),
  applyLimit: () => false,
};

/**
 * Creates an empty private staging directory for a restore of `nsRoot` (`<ws>/namespaces/<ns>`), made the way
 * `roots` makes namespace roots, so that the tree swapped in keeps the namespace's hard quota.
 */
export async function prepareStaging(nsRoot: string, roots: RootMaker = plainRoots): Promise<SwapPlan> {
  const namespacesDir = dirname(nsRoot);
  const ns = basename(nsRoot);
  await fsp.mkdir(treesDirFor(namespacesDir), { recursive: true, mode: 0o700 });
  await fsp.mkdir(namespacesDir, { recursive: true, mode: 0o700 });
  const nsDirFd = openServerDir(namespacesDir);
  let treesFd = -1;
  let stagingFd = -1;
  try {
    treesFd = openServerDir(treesDirFor(namespacesDir));
    // The root must exist so the swap is always the same two renames.
    try {
      mkdirat(nsDirFd, ns, 0o755);
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw err;
    }
    const id = randomBytes(8).toString('hex');
    const staging = `${id}-new-${ns}`;
    roots.makeRoot(treesFd, staging);
    stagingFd = openat2(treesFd, staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH_NO_LINKS);
    roots.applyLimit(stagingFd);
    return new SwapPlan(id, ns, nsDirFd, treesFd, stagingFd);
  } catch (err) {
    if (stagingFd >= 0) closeQuietly(stagingFd);
    if (treesFd >= 0) closeQuietly(treesFd);
    closeQuietly(nsDirFd);
    throw err;
  }
}

/** Makes the staging tree the namespace root (committed and flushed on return); removeOldTree then deletes the previous one. */
export async function commitSwap(plan: SwapPlan): Promise<void> {
  try {
    renameat2(plan.nsDirFd, plan.ns, plan.treesFd, plan.oldName);
  } catch (err) {
    await removeTreeAt(plan.treesFd, plan.stagingName, plan.treesFd).catch(() => {});
    throw err;
  }
  restorePhase('mid-swap');
  try {
    renameat2(plan.treesFd, plan.stagingName, plan.nsDirFd, plan.ns);
  } catch (err) {
    await rollBack(plan).catch(() => {});
    throw err;
  }
  await fsyncFd(plan.nsDirFd);
  await fsyncFd(plan.treesFd);
  restorePhase('after-swap');
}

/**
 * Deletes the tree a committed swap moved aside. Never rejects: the restore is
 * committed, so a failure here must not turn it into an error; whatever is left
 * in .trees is removed by the next start-up recovery.
 */
export async function removeOldTree(plan: SwapPlan): Promise<void> {
  await removeTreeAt(plan.treesFd, plan.oldName, plan.treesFd, (i) => restorePhase('mid-cleanup', i)).catch(() => {});
}

function exists(dirFd: number, name: string): boolean {
  return fstatat(dirFd, name) !== null;
}

/** Old tree back at the root (a root recreated meanwhile is discarded), staging removed. */
async function rollBack(plan: SwapPlan): Promise<void> {
  if (exists(plan.treesFd, plan.oldName)) {
    if (exists(plan.nsDirFd, plan.ns)) {
      renameat2(plan.nsDirFd, plan.ns, plan.treesFd, plan.strayName);
      renameat2(plan.treesFd, plan.oldName, plan.nsDirFd, plan.ns);
      await removeTreeAt(plan.treesFd, plan.strayName, plan.treesFd);
    } else {
      renameat2(plan.treesFd, plan.oldName, plan.nsDirFd, plan.ns);
    }
    await fsyncFd(plan.nsDirFd);
  }
  await removeTreeAt(plan.treesFd, plan.stagingName, plan.treesFd);
}

/** A private, empty directory `.trees/import-<id>` for an uploaded archive; `close()` removes it. */
export class ImportStaging {
  private constructor(
    readonly name: string,
    private readonly treesFd: number,
    readonly fd: number,
  ) {}

  /** `id`: 16 hex digits; the caller holds `importLockName(id)` until close() returned. */
  static async create(namespacesDir: string, id: string): Promise<ImportStaging> {
    if (!/^[0-9a-f]{16}$/.test(id)) throw new TypeError(`invalid import id ${id}`);
    await fsp.mkdir(treesDirFor(namespacesDir), { recursive: true, mode: 0o700 });
    const treesFd = openServerDir(treesDirFor(namespacesDir));
    const name = `import-${id}`;
    try {
      mkdirat(treesFd, name, 0o700);
      const fd = openat2(treesFd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, BENEATH_NO_LINKS);
      return new ImportStaging(name, treesFd, fd);
    } catch (err) {
      await removeTreeAt(treesFd, name, treesFd).catch(() => {});
      closeQuietly(treesFd);
      throw err;
    }
  }

  async close(): Promise<void> {
    closeQuietly(this.fd);
    try {
      await removeTreeAt(this.treesFd, this.name, this.treesFd);
    } finally {
      closeQuietly(this.treesFd);
    }
  }
}

/** Drops a staging tree that was never swapped in. */
export async function discardStaging(plan: SwapPlan): Promise<void> {
  await removeTreeAt(plan.treesFd, plan.stagingName, plan.treesFd);
}

/** `name`: the namespace, or `importLockName(id)` for an import's staging tree. */
export type RecoveryGuard = (name: string, fn: () => Promise<void>) => Promise<void>;

/**
 * Finishes or rolls back every swap interrupted by a crash under
 * `namespacesDir` (`<data>/workspaces/<ws>/namespaces`), and deletes leftover
 * staging and old trees and imports' staging trees. Call at start-up, before
 * the server accepts requests. On a shared data directory another node may be
 * running one of these restores or imports: `guard` runs each namespace's
 * recovery under that namespace's exclusive lock (an import's under
 * `importLockName(id)`) and skips it (returns without calling `fn`) when the
 * lock is held elsewhere.
 */
export async function recoverInterruptedRestores(
  namespacesDir: string,
  guard: RecoveryGuard = (_ns, fn) => fn(),
): Promise<void> {
  let treesFd: number;
  try {
    treesFd = openServerDir(treesDirFor(namespacesDir));
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    throw err;
  }
  let nsDirFd = -1;
  try {
    const names: Buffer[] = [];
    const reader = new DirReader(treesFd);
    for (let batch = reader.next(); batch !== null; batch = reader.next()) for (const d of batch) names.push(d.name);
    const swaps = new Map<string, { ns: string; has: Set<string> }>();
    for (const raw of names) {
      const imp = IMPORT_RE.exec(raw.toString('latin1'));
      if (imp) {
        // An import that died with its process; one running on another node holds its lock.
        await guard(importLockName(imp[1]!), () => removeTreeAt(treesFd, raw, treesFd));
        continue;
      }
      const m = NAME_RE.exec(raw.toString('latin1'));
      if (!m) {
        // Nothing else belongs here; an unknown entry is debris (a deleted namespace's trash among it).
        await removeTreeAt(treesFd, raw, treesFd);
        continue;
      }
      const key = `${m[1]}-${m[3]}`;
      const s = swaps.get(key) ?? { ns: m[3]!, has: new Set<string>() };
      s.has.add(m[2]!);
      swaps.set(key, s);
    }
    if (swaps.size === 0) return;
    await fsp.mkdir(namespacesDir, { recursive: true, mode: 0o700 });
    nsDirFd = openServerDir(namespacesDir);
    for (const [key, s] of swaps) {
      const plan = new SwapPlan(key.slice(0, 16), s.ns, nsDirFd, treesFd, -1);
      await guard(s.ns, async () => {
        if (s.has.has('new') && s.has.has('old')) {
          await rollBack(plan); // crashed between the two renames: not committed
        } else if (s.has.has('old')) {
          await removeTreeAt(treesFd, plan.oldName, treesFd); // committed; the old tree was being deleted
        } else if (s.has.has('new')) {
          await removeTreeAt(treesFd, plan.stagingName, treesFd); // crashed before the swap began
        }
        if (s.has.has('stray')) await removeTreeAt(treesFd, plan.strayName, treesFd);
      });
    }
  } finally {
    if (nsDirFd >= 0) closeQuietly(nsDirFd);
    closeQuietly(treesFd);
  }
}

/** The workspace ids under `<dataDir>/workspaces` (server-made directories), for start-up recovery. */
export async function workspaceIds(dataDir: string): Promise<string[]> {
  try {
    return await fsp.readdir(join(dataDir, 'workspaces'));
  } catch (err) {
    if (errCode(err) === 'ENOENT') return [];
    throw err;
  }
}

/**
 * Removes the entry `name` of `dirFd` through descriptors (tree/walk.ts), read-only
 * directories included when the server is not root; nothing in it is followed.
 * Subtrees deeper than the walk limit are moved to `hoistFd` (same filesystem)
 * and removed from there. With `afterChild`, the top-level children go one at
 * a time first, so the crash tests can stop it half-way.
 */
export async function removeTreeAt(
  dirFd: number,
  name: string | Buffer,
  hoistFd: number,
  afterChild?: (i: number) => void,
): Promise<void> {
  if (afterChild) {
    const fd = openChildDir(dirFd, name);
    if (fd !== null) {
      try {
        // Its children are unlinked through it: a read-only root (0555) must not stop that.
        fs.fchmodSync(fd, 0o700);
        const reader = new DirReader(fd);
        let i = 0;
        for (let batch = reader.next(); batch !== null; batch = reader.next()) {
          for (const d of batch) {
            await removeRacing(fd, d.name, hoistFd);
            afterChild(++i);
          }
        }
      } finally {
        closeQuietly(fd);
      }
    }
  }
  await removeRacing(dirFd, name, hoistFd);
}

async function removeRacing(dirFd: number, name: string | Buffer, hoistFd: number): Promise<void> {
  let raced = 0;
  for (let vanished = 0; ;) {
    try {
      await removeEntry(dirFd, name, hoistFd);
      return;
    } catch (err) {
      const code = errCode(err) ?? '';
      // Another remover is at work on the same tree (start-up recovery on another node finishing an
      // old tree that this node is still deleting after its restore answered): each ENOENT is an entry
      // it removed, so these passes converge; what is gone is gone.
      if (code === 'ENOENT') {
        if (fstatat(dirFd, name) === null) return;
        if (++vanished < MAX_VANISHED) continue;
      }
      // A process still running in an old tree can swap a directory it is
      // emptying for a link or another directory between two calls (rmdir then
      // says ENOTDIR / ENOTEMPTY); each pass removes what it saw, so passes converge.
      if (++raced >= REMOVE_ATTEMPTS || !RACED.has(code)) throw err;
    }
  }
}

const REMOVE_ATTEMPTS = 5;
const RACED = new Set(['ENOTDIR', 'ENOTEMPTY', 'EISDIR']);
/** Passes that met an entry another remover took first (bounded by the tree's size; this is a backstop). */
const MAX_VANISHED = 100_000;

/**
 * Makes a freshly written tree durable before it is swapped in, so a power
 * cut after the commit cannot expose files whose data never reached the
 * disk. One syncfs (coreutils `sync -f`, given the directory as its fd 3)
 * flushes the filesystem in a single pass; without it every file and
 * directory is fsync'd, through descriptors.
 */
export async function flushToDisk(dirFd: number): Promise<void> {
  for (const bin of ['/usr/bin/sync', '/bin/sync']) {
    const r = await new Promise<'ok' | 'missing' | 'failed'>((resolve) => {
      const child = spawn(bin, ['-f', '/dev/fd/3'], {
        stdio: ['ignore', 'ignore', 'ignore', dirFd],
        timeout: 10 * 60_000,
      });
      child.on('error', (err) => resolve(errCode(err) === 'ENOENT' ? 'missing' : 'failed'));
      child.on('exit', (code) => resolve(code === 0 ? 'ok' : 'failed'));
    });
    if (r === 'ok') return;
    if (r === 'failed') break;
  }
  await fsyncTree(dirFd);
}

async function fsyncTree(rootFd: number): Promise<void> {
  await walkTree(rootFd, {
    visit(e) {
      if (!e.st.isFile() && !e.st.isDirectory()) return;
      let fd: number;
      try {
        fd = openat2(e.dirFd, e.name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, BENEATH_NO_LINKS);
      } catch (err) {
        // Unreadable to a non-root server (mode 0000): best effort, the rest is still flushed.
        if (errCode(err) === 'EACCES') return;
        throw err;
      }
      try {
        fs.fsyncSync(fd);
      } finally {
        closeQuietly(fd);
      }
    },
  });
  await fsyncFd(rootFd);
}
