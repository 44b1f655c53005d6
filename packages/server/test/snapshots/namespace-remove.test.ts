/**
 * Namespace deletion removes the whole tree, read-only directories included,
 * also when the server is not root; and a crash half-way through the delete
 * leaves nothing that start-up recovery does not clean up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, promises as fsp, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../../src/db/index.js';
import { NamespaceService } from '../../src/namespaces/service.js';
import { recoverInterruptedRestores, TREES_DIR } from '../../src/snapshots/archive.js';
import { rmTree, transpileSnapshots } from './support.js';
import { isRoot } from '../../../../test/helpers/root.js';

const NOBODY = 65534;
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;

let work: string;
let store: Store;
let namespaces: NamespaceService;
const ws = 'ws-0123456789abcdef';

/** Fills `root` with what agents leave behind: nested dirs, a 0555 directory holding files, a 0444 file, a link. */
async function fillTree(root: string): Promise<void> {
  await fsp.mkdir(join(root, 'src/deep'), { recursive: true });
  await fsp.writeFile(join(root, 'src/deep/a.txt'), 'a');
  await fsp.mkdir(join(root, 'locked/inner'), { recursive: true });
  await fsp.writeFile(join(root, 'locked/inner/x.bin'), 'x');
  await fsp.writeFile(join(root, 'locked/ro.txt'), 'ro');
  await fsp.chmod(join(root, 'locked/ro.txt'), 0o444);
  await fsp.chmod(join(root, 'locked/inner'), 0o555);
  await fsp.chmod(join(root, 'locked'), 0o555);
  await fsp.symlink('/etc/passwd', join(root, 'link-out'));
}

beforeAll(async () => {
  work = await fsp.mkdtemp(join(tmpdir(), 'trove-nsrm-'));
  store = await openStore({ dataDir: work, databaseUrl: null });
  namespaces = new NamespaceService(store.db, work, { uid: 0, gid: 0, enabled: false });
  await namespaces.trees.start();
});

afterAll(async () => {
  await namespaces?.trees.close();
  await store?.close?.();
  if (work) await rmTree(work);
});

describe('NamespaceService.remove', () => {
  it('removes the tree (read-only directories included) and the registry row, leaving nothing in .trees', async () => {
    const dir = await namespaces.ensure(ws, 'doomed');
    await fillTree(dir);
    expect(await namespaces.exists(ws, 'doomed')).toBe(true);
    await namespaces.remove(ws, 'doomed');
    await expect(fsp.lstat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await namespaces.exists(ws, 'doomed')).toBe(false);
    expect(await fsp.readdir(join(namespaces.workspaceDir(ws), TREES_DIR))).toEqual([]);
    // Nothing was followed out of the tree.
    expect((await fsp.stat('/etc/passwd')).isFile()).toBe(true);
    // The name is free at once: the next use starts empty.
    const again = await namespaces.ensure(ws, 'doomed');
    expect(await fsp.readdir(again)).toEqual([]);
  });

  it('removing a namespace that has no directory only drops its row', async () => {
    await namespaces.ensure(ws, 'no-tree');
    await fsp.rm(namespaces.dir(ws, 'no-tree'), { recursive: true });
    await namespaces.remove(ws, 'no-tree');
    expect(await namespaces.exists(ws, 'no-tree')).toBe(false);
  });

  it('a delete interrupted after the move (crash) leaves trash that start-up recovery removes', async () => {
    // What remove() leaves if the process dies between the rename and the rm.
    const namespacesDir = join(namespaces.workspaceDir(ws), 'namespaces');
    const trash = join(namespaces.workspaceDir(ws), TREES_DIR, 'trash-00112233aabbccdd-crashed');
    await fsp.mkdir(trash, { recursive: true });
    await fillTree(trash);
    const kept = await namespaces.ensure(ws, 'survivor');
    await fsp.writeFile(join(kept, 'keep.txt'), 'keep');
    await recoverInterruptedRestores(namespacesDir);
    expect(await fsp.readdir(join(namespaces.workspaceDir(ws), TREES_DIR))).toEqual([]);
    expect(await fsp.readFile(join(kept, 'keep.txt'), 'utf8')).toBe('keep');
  });
});

const canRunAsNobody = isRoot && hasSetpriv;
describe.skipIf(!canRunAsNobody)(
  `removeTreeAt as a non-root server${canRunAsNobody ? '' : ' (SKIPPED: needs root and setpriv to run a child as nobody)'}`,
  () => {
    it('empties read-only directories that fs.rm cannot', async () => {
      const base = await fsp.mkdtemp(join(tmpdir(), 'trove-nsrm-nobody-'));
      try {
        chmodSync(base, 0o755);
        const treeSwap = transpileSnapshots(join(base, 'mod')).replace(/archive\.js$/, 'tree-swap.js');
        const own = async (root: string) => {
          await fillTree(root);
          // The server user owns its data dir; lchown so the link itself (not /etc/passwd) changes hands.
          const chownAll = async (p: string) => {
            const st = await fsp.lstat(p);
            await fsp.lchown(p, NOBODY, NOBODY);
            if (st.isDirectory()) for (const n of await fsp.readdir(p)) await chownAll(join(p, n));
          };
          chownSync(root, NOBODY, NOBODY);
          await chownAll(root);
        };
        // Like the server's data dir: the parent of the trees belongs to the server user too.
        const data = join(base, 'data');
        await fsp.mkdir(data, { mode: 0o700 });
        chownSync(data, NOBODY, NOBODY);
        const plain = join(data, 'plain');
        const viaRemoveTree = join(data, 'via-remove-tree');
        await own(plain);
        await own(viaRemoveTree);
        const script = join(base, 'rm.mjs');
        writeFileSync(
          script,
          `import fs, { promises as fsp } from 'node:fs';
import { basename, dirname } from 'node:path';
import { removeTreeAt } from ${JSON.stringify(treeSwap)};
const out = {};
try { await fsp.rm(process.argv[2], { recursive: true, force: true }); out.plain = 'ok'; } catch (e) { out.plain = e.code; }
const parent = fs.openSync(dirname(process.argv[3]), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
try { await removeTreeAt(parent, basename(process.argv[3]), parent); out.removeTree = 'ok'; } catch (e) { out.removeTree = e.code; }
console.log(JSON.stringify(out));
`,
        );
        const r = spawnSync(
          'setpriv',
          [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, script, plain, viaRemoveTree],
          { encoding: 'utf8', cwd: base },
        );
        expect(r.stderr).toBe('');
        // The control shows the case is real: plain rm -rf fails on the 0555 directories.
        expect(JSON.parse(r.stdout.trim())).toEqual({ plain: 'EACCES', removeTree: 'ok' });
        await expect(fsp.lstat(viaRemoveTree)).rejects.toMatchObject({ code: 'ENOENT' });
      } finally {
        await rmTree(base);
      }
    });
  },
);
