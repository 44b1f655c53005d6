/**
 * Namespaces: validated names, their directory under the data dir, and the
 * registry row that makes them listable. A namespace exists from its first use.
 */
import { closeSync, constants, openSync, promises as fsp, realpathSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Db } from '../db/index.js';
import { AppError } from '../errors.js';
import { nowIso } from '../ids.js';
import { treesDirFor } from '../snapshots/tree-swap.js';
import { TreeStore, type NamespaceTree, type Ownership } from '../tree/index.js';
import { NamespaceRepository, type NamespaceListRow } from './repository.js';

/** A namespace of a workspace: what every runtime call works in. */
export interface NsContext {
  workspaceId: string;
  namespace: string;
}

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

export function validateNamespaceName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_RE.test(name) || name === '.' || name === '..') {
    throw new AppError(
      'namespace_invalid',
      'Invalid namespace name: use 1-64 characters of A-Z a-z 0-9 . _ - (not "." or "..")',
    );
  }
  return name;
}

export type { Ownership } from '../tree/index.js';

export class NamespaceService {
  /** Namespaces known to exist, by `workspace/namespace`, with their realDir(). */
  private readonly known = new Map<string, string>();
  private readonly lastTouch = new Map<string, number>();
  /** realpath of the data dir, taken once (see realDir). */
  private realDataDir: string | null = null;

  /** Opens namespace trees and owns the private scratch directory (tree/). */
  readonly trees: TreeStore;
  private readonly repo: NamespaceRepository;

  constructor(
    db: Db,
    readonly dataDir: string,
    readonly owner: Ownership,
    /** The namespace byte quota, enforced by the kernel too where the volume allows (tree/hard-quota.ts). */
    quotaBytes = 0,
  ) {
    this.trees = new TreeStore(dataDir, owner, quotaBytes);
    this.repo = new NamespaceRepository(db);
  }

  /**
   * The namespace's tree held open by its root descriptor (every tenant path
   * is resolved beneath it), or null when the namespace has no tree (never
   * used, or deleted). The caller closes it.
   */
  openTree(workspaceId: string, namespace: string): NamespaceTree | null {
    return this.trees.open(this.realDir(workspaceId, namespace));
  }

  workspaceDir(workspaceId: string): string {
    return join(this.dataDir, 'workspaces', workspaceId);
  }

  /**
   * Host path of the namespace tree: always a real directory at this fixed
   * path (a snapshot restore swaps a new directory in at the same path; see
   * snapshots/tree-swap.ts).
   */
  dir(workspaceId: string, namespace: string): string {
    return join(this.workspaceDir(workspaceId), 'namespaces', namespace);
  }

  /**
   * dir() with the data dir realpath'd: a real path, no symlink anywhere in it.
   * Below the data dir every component is a directory the server created (0700,
   * never visible to exec, never replaced by a link: a restore swaps in another
   * directory), so only the data dir itself needs resolving, once. The tree
   * module opens the namespace root from here; tenant paths are then resolved
   * beneath that descriptor (tree/index.ts).
   */
  realDir(workspaceId: string, namespace: string): string {
    this.realDataDir ??= realpathSync.native(this.dataDir);
    return join(this.realDataDir, 'workspaces', workspaceId, 'namespaces', namespace);
  }

  /** chown of a directory the server made (a namespace root), never of a tenant path. */
  private async chownServerDir(path: string): Promise<void> {
    if (this.owner.enabled) await fsp.lchown(path, this.owner.uid, this.owner.gid);
  }

  /** Creates the directory and registry row on first use; cheap afterwards. Returns realDir(). */
  async ensure(workspaceId: string, namespace: string): Promise<string> {
    const key = `${workspaceId}/${namespace}`;
    const knownDir = this.known.get(key);
    if (knownDir !== undefined) {
      // Every write passes here: a synchronous stat (read-only metadata, ~3 µs) rather than a thread-pool round trip.
      if (statSync(knownDir, { throwIfNoEntry: false })?.isDirectory()) return knownDir;
      this.known.delete(key); // deleted meanwhile (namespace delete): recreate below
    }
    const dir = this.realDir(workspaceId, namespace);
    const parent = join(this.workspaceDir(workspaceId), 'namespaces');
    await fsp.mkdir(parent, { recursive: true, mode: 0o700 });
    const parentFd = openSync(parent, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      // A btrfs subvolume with the quota as its limit where the volume offers hard quotas, else a directory.
      this.trees.hardQuota.makeRoot(parentFd, namespace);
      await this.chownServerDir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      closeSync(parentFd);
    }
    // Once per process and namespace: the limit follows --quota-bytes when the operator changes it.
    const tree = this.trees.open(dir);
    try {
      if (tree) this.trees.hardQuota.applyLimit(tree.rootFd);
    } finally {
      tree?.close();
    }
    const made = await this.repo.register(workspaceId, namespace, nowIso());
    this.known.set(key, dir);
    // A row made now holds this activity time already: the touch that follows a first call would write it again.
    if (made) this.lastTouch.set(key, Date.now());
    return dir;
  }

  /** Records activity (throttled to one write per namespace per second). */
  async touch(workspaceId: string, namespace: string): Promise<void> {
    const key = `${workspaceId}/${namespace}`;
    const now = Date.now();
    if ((this.lastTouch.get(key) ?? 0) > now - 1000) return;
    this.lastTouch.set(key, now);
    await this.repo.touch(workspaceId, namespace, nowIso());
  }

  async list(workspaceId: string): Promise<NamespaceListRow[]> {
    return this.repo.list(workspaceId);
  }

  async exists(workspaceId: string, namespace: string): Promise<boolean> {
    return this.repo.exists(workspaceId, namespace);
  }

  /**
   * Removes the tree and the registry row (snapshots are removed by their
   * service). The caller holds the namespace's exclusive lock.
   */
  async remove(workspaceId: string, namespace: string): Promise<void> {
    const namespacesDir = join(this.workspaceDir(workspaceId), 'namespaces');
    const dir = join(namespacesDir, namespace);
    // Moved aside first so the name is free at once. The trash goes into the
    // workspace's .trees directory, where start-up recovery removes anything
    // it does not recognise: a crash half-way through the delete leaves no debris.
    const trees = treesDirFor(namespacesDir);
    const trashName = `trash-${randomBytes(8).toString('hex')}-${namespace}`;
    const trash = join(trees, trashName);
    await fsp.mkdir(trees, { recursive: true, mode: 0o700 });
    try {
      await fsp.rename(dir, trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.known.delete(`${workspaceId}/${namespace}`);
    await this.repo.remove(workspaceId, namespace);
    // Emptied through descriptors (tree/): nothing in it is followed, whatever a tenant process left there.
    // The namespace is already gone; a failure here only leaves debris for the next start.
    await this.trees.removeIn(trees, trashName).catch(() => {});
  }
}
