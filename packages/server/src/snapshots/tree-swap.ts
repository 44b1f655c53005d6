/**
 * Atomic replacement of a namespace tree, crash-safe without renameat2.
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
 */
import { promises as fsp } from 'node:fs';
import { execFile } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsyncDir } from './fd-io.js';
import { crashPoint } from './crash-points.js';

export const TREES_DIR = '.trees';
const NAME_RE = /^([0-9a-f]{16})-(new|old|stray)-(.+)$/;

/** `<workspace>/.trees` for `<workspace>/namespaces`. */
export function treesDirFor(namespacesDir: string): string {
  return join(dirname(namespacesDir), TREES_DIR);
}

export interface SwapPlan {
  id: string;
  nsRoot: string;
  staging: string;
  old: string;
}

/** Creates an empty private staging directory for a restore of `nsRoot`. */
export async function prepareStaging(nsRoot: string): Promise<SwapPlan> {
  const trees = treesDirFor(dirname(nsRoot));
  await fsp.mkdir(trees, { recursive: true, mode: 0o700 });
  // The root must exist so the swap is always the same two renames.
  await fsp.mkdir(dirname(nsRoot), { recursive: true, mode: 0o700 });
  await fsp.mkdir(nsRoot, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const id = randomBytes(8).toString('hex');
  const ns = basename(nsRoot);
  const plan = { id, nsRoot, staging: join(trees, `${id}-new-${ns}`), old: join(trees, `${id}-old-${ns}`) };
  await fsp.mkdir(plan.staging, { mode: 0o700 });
  return plan;
}

/** Makes the staging tree the namespace root; the old tree is removed before returning. */
export async function commitSwap(plan: SwapPlan): Promise<void> {
  const nsDir = dirname(plan.nsRoot);
  const trees = dirname(plan.staging);
  try {
    await fsp.rename(plan.nsRoot, plan.old);
  } catch (err) {
    await removeTree(plan.staging).catch(() => {});
    throw err;
  }
  crashPoint('mid-swap');
  try {
    await fsp.rename(plan.staging, plan.nsRoot);
  } catch (err) {
    await rollBack(plan).catch(() => {});
    throw err;
  }
  await fsyncDir(nsDir);
  await fsyncDir(trees);
  crashPoint('after-swap');
  // Committed: a failure to delete the old tree must not turn the restore into an
  // error. Whatever is left in .trees is removed by the next start-up recovery.
  await removeTree(plan.old, (i) => crashPoint('mid-cleanup', i)).catch(() => {});
}

/** Old tree back at the root (a root recreated meanwhile is discarded), staging removed. */
async function rollBack(plan: SwapPlan): Promise<void> {
  const trees = dirname(plan.staging);
  if (await exists(plan.old)) {
    if (await exists(plan.nsRoot)) {
      const stray = join(trees, `${plan.id}-stray-${basename(plan.nsRoot)}`);
      await fsp.rename(plan.nsRoot, stray);
      await fsp.rename(plan.old, plan.nsRoot);
      await removeTree(stray);
    } else {
      await fsp.rename(plan.old, plan.nsRoot);
    }
    await fsyncDir(dirname(plan.nsRoot));
  }
  await removeTree(plan.staging);
}

/** Drops a staging tree that was never swapped in. */
export async function discardStaging(plan: SwapPlan): Promise<void> {
  await removeTree(plan.staging);
}

/**
 * Finishes or rolls back every swap interrupted by a crash under
 * `namespacesDir` (`<data>/workspaces/<ws>/namespaces`), and deletes leftover
 * staging and old trees. Call at start-up, before the server accepts
 * requests. On a shared data directory another node may be running one of
 * these restores: `guard` runs each namespace's recovery under that
 * namespace's exclusive lock and skips it (returns without calling `fn`)
 * when the lock is held elsewhere.
 */
export type RecoveryGuard = (namespace: string, fn: () => Promise<void>) => Promise<void>;

export async function recoverInterruptedRestores(
  namespacesDir: string,
  guard: RecoveryGuard = (_ns, fn) => fn(),
): Promise<void> {
  const trees = treesDirFor(namespacesDir);
  let names: string[];
  try {
    names = await fsp.readdir(trees);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    throw err;
  }
  const swaps = new Map<string, { ns: string; has: Set<string> }>();
  for (const name of names) {
    const m = NAME_RE.exec(name);
    if (!m) {
      // Nothing else belongs here; an unknown entry is debris.
      await removeTree(join(trees, name));
      continue;
    }
    const key = `${m[1]}-${m[3]}`;
    const s = swaps.get(key) ?? { ns: m[3]!, has: new Set<string>() };
    s.has.add(m[2]!);
    swaps.set(key, s);
  }
  for (const [key, s] of swaps) {
    const id = key.slice(0, 16);
    const plan: SwapPlan = {
      id,
      nsRoot: join(namespacesDir, s.ns),
      staging: join(trees, `${id}-new-${s.ns}`),
      old: join(trees, `${id}-old-${s.ns}`),
    };
    await guard(s.ns, async () => {
      if (s.has.has('new') && s.has.has('old')) {
        await rollBack(plan); // crashed between the two renames: not committed
      } else if (s.has.has('old')) {
        await removeTree(plan.old); // committed; the old tree was being deleted
      } else if (s.has.has('new')) {
        await removeTree(plan.staging); // crashed before the swap began
      }
      if (s.has.has('stray')) await removeTree(join(trees, `${id}-stray-${s.ns}`));
    });
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * rm -rf that also works when the server is not root and the tree has
 * read-only directories (a restored 0555 directory cannot be emptied until
 * it is made writable). Top-level children go one at a time so the crash
 * tests can stop it half-way.
 */
export async function removeTree(path: string, afterChild?: (i: number) => void): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isDirectory()) {
    await fsp.rm(path, { force: true });
    return;
  }
  try {
    if (afterChild) {
      const children = await fsp.readdir(path);
      for (let i = 0; i < children.length; i++) {
        await fsp.rm(join(path, children[i]!), { recursive: true, force: true });
        afterChild(i + 1);
      }
    }
    await fsp.rm(path, { recursive: true, force: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
    await makeWritable(path);
    await fsp.rm(path, { recursive: true, force: true });
  }
}

async function makeWritable(dir: string): Promise<void> {
  const st = await fsp.lstat(dir).catch(() => null);
  if (!st?.isDirectory()) return;
  await fsp.chmod(dir, 0o700).catch(() => {});
  for (const d of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (d.isDirectory()) await makeWritable(join(dir, d.name));
  }
}

/**
 * Makes a freshly written tree durable before it is swapped in, so a power
 * cut after the commit cannot expose files whose data never reached the
 * disk. One syncfs (coreutils `sync -f`) flushes the filesystem in a single
 * pass; without it every file and directory is fsync'd.
 */
export async function flushToDisk(dir: string): Promise<void> {
  for (const bin of ['/usr/bin/sync', '/bin/sync']) {
    const r = await new Promise<'ok' | 'missing' | 'failed'>((resolve) => {
      execFile(bin, ['-f', dir], { timeout: 10 * 60_000 }, (err) => {
        if (!err) resolve('ok');
        else resolve((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'failed');
      });
    });
    if (r === 'ok') return;
    if (r === 'failed') break;
  }
  await fsyncTree(dir);
}

async function fsyncTree(root: string): Promise<void> {
  const fsyncPath = async (p: Buffer) => {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(p, 'r');
    } catch (err) {
      // Unreadable to a non-root server (mode 0000): best effort, the rest is still flushed.
      if ((err as NodeJS.ErrnoException).code === 'EACCES') return;
      throw err;
    }
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  };
  const dirs: Buffer[] = [Buffer.from(root)];
  let batch: Promise<void>[] = [];
  while (dirs.length > 0) {
    const dir = dirs.pop()!;
    const entries = await fsp.readdir(dir, { withFileTypes: true, encoding: 'buffer' });
    for (const d of entries) {
      const p = Buffer.concat([dir, Buffer.from('/'), d.name as unknown as Buffer]);
      if (d.isDirectory()) dirs.push(p);
      else if (d.isFile()) batch.push(fsyncPath(p));
      if (batch.length >= 16) {
        await Promise.all(batch);
        batch = [];
      }
    }
    batch.push(fsyncPath(dir));
  }
  await Promise.all(batch);
}
