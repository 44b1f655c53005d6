/**
 * What a test run as root can do that a run as another user cannot, decided in one place. `npm test` passes
 * as any user: a test that needs what only root may do (mount, mknod, a loop device, fanotify, running a
 * child as another uid) runs as root and is otherwise skipped with the reason in its name; as root, every
 * test runs. Use `it.runIf(isRoot)(name + needsRoot('mount'), …)` (or `describe.runIf`).
 */
import { chmodSync, lstatSync, promises as fsp, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The tests run as root (uid 0): the kernel's own check, not a setting. */
export const isRoot = process.getuid?.() === 0;

/** The end of a root-only test's name: ` (needs root: <why>)` when it is skipped, nothing as root. */
export function needsRoot(why: string): string {
  return isRoot ? '' : ` (needs root: ${why})`;
}

/** The end of the name of a test that runs either way but leaves out a part only root can set up. */
export function withoutRoot(part: string): string {
  return isRoot ? '' : ` (without ${part}: needs root)`;
}

/**
 * rm -rf that copes with read-only directories (a test tree's 0555 directory, a restored snapshot's): root
 * removes entries from them anyway, another user must make them writable first.
 */
export async function rmTree(path: string): Promise<void> {
  const fix = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (!st.isDirectory()) return;
    try {
      chmodSync(p, 0o700);
    } catch {
      /* not ours to fix */
    }
    for (const n of readdirSync(p)) fix(join(p, n));
  };
  if (!isRoot) fix(path);
  await fsp.rm(path, { recursive: true, force: true });
}
