/**
 * The resolver (src/tree) on hostile trees, as a matrix: every kind of entry a tenant (or a careless
 * operator) can leave — absolute links, `..` links, links that leave and come back, chains and loops,
 * /proc magic links, a proc mount, a tmpfs mount and a bind mount of an outside directory, FIFOs, sockets
 * and device nodes where a directory is expected — against every tree operation, each with its exact
 * answer, and nothing outside read, listed, created, changed or removed. Then the operations again, tens
 * of thousands of times, while a directory is exchanged with a link out in a tight loop
 * (test/e2e/races/swapper.py). The end-to-end race suite is test/e2e/races/; namespace-tree.test.ts beside
 * this file has the single-threaded cases.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs, {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TreeStore, type NamespaceTree } from '../../src/tree/index.js';
import { isRoot, needsRoot, rmTree, withoutRoot } from '../../../../test/helpers/root.js';

const SECRET = 'outside-secret-7c1f';
const SECRET_NAME = 'outside-name-7c1f.txt';
const SWAPPER = fileURLToPath(new URL('../e2e/races/swapper.py', import.meta.url));

let base: string;
let data: string;
let root: string;
/** Outside the data dir entirely. */
let outside: string;
/** Another namespace beside this one (reachable by `../victim`). */
let victim: string;
let store: TreeStore;
let tree: NamespaceTree;
const mounts: string[] = [];

/** Every entry below `dir` with what would show any effect on it; never follows a link or enters a mount. */
function fingerprint(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p, { bigint: true });
      const content = st.isFile() ? ' sha256=' + createHash('sha256').update(readFileSync(p)).digest('hex') : '';
      out.push(`${p} mode=${st.mode} uid=${st.uid} size=${st.size} mtime=${st.mtimeNs} ctime=${st.ctimeNs}${content}`);
      if (st.isDirectory() && !mounts.includes(p)) walk(p);
    }
  };
  walk(dir);
  return out;
}

function mount(args: string[], at: string): void {
  const r = spawnSync('mount', [...args, at], { encoding: 'utf8' });
  expect(r.status, `mount ${args.join(' ')} ${at} ${r.stderr}`).toBe(0);
  mounts.push(at);
}

/** What the call answers: 'ok' or the AppError code (descriptors it returned are closed). */
function codeOf(fn: () => unknown): string {
  try {
    const r = fn();
    if (typeof r === 'number') fs.closeSync(r);
    else if (r && typeof r === 'object' && 'fd' in r) fs.closeSync((r as { fd: number }).fd);
    return 'ok';
  } catch (err) {
    return String((err as { code?: string }).code ?? err);
  }
}

async function asyncCodeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    const r = await fn();
    if (r && typeof r === 'object' && 'fd' in r) fs.closeSync((r as { fd: number }).fd);
    return 'ok';
  } catch (err) {
    return String((err as { code?: string }).code ?? err);
  }
}

/** Writes `content` at `rel` the way the server does: parent beneath the root, temp file, rename. */
async function put(rel: string, content: string): Promise<void> {
  const dir = await tree.openParent(rel, true);
  try {
    const tmp = await tree.createTemp(dir, [Buffer.from(content)], true);
    let committed = false;
    try {
      await tree.commit(tmp, dir);
      committed = true;
    } finally {
      fs.closeSync(tmp.fd);
      if (!committed) await tree.discard(tmp);
    }
  } finally {
    fs.closeSync(dir.fd);
  }
}

beforeAll(async () => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'trove-resolver-')));
  data = join(base, 'data');
  root = join(data, 'ns', 'evil');
  victim = join(data, 'ns', 'victim');
  outside = join(base, 'outside');
  for (const d of [root, victim, join(outside, 'dir')]) mkdirSync(d, { recursive: true });
  writeFileSync(join(outside, SECRET_NAME), SECRET);
  writeFileSync(join(outside, 'dir', 'inner.txt'), SECRET);
  writeFileSync(join(victim, SECRET_NAME), SECRET);
  chmodSync(outside, 0o755);

  const at = (name: string) => join(root, name);
  mkdirSync(at('real/sub'), { recursive: true });
  writeFileSync(at('real/file.txt'), 'inside');
  writeFileSync(at('real/sub/deep.txt'), 'deep');
  // Links out, every way.
  symlinkSync(outside, at('abs-dir'));
  symlinkSync(join(outside, SECRET_NAME), at('abs-file'));
  symlinkSync('../victim', at('up-dir'));
  symlinkSync(`../victim/${SECRET_NAME}`, at('up-file'));
  symlinkSync('../'.repeat(30) + outside.slice(1), at('up-far'));
  symlinkSync('real/../../victim', at('in-then-out'));
  // Leaves the root and comes back to it: refused all the same (the kernel sees a `..` above the root).
  symlinkSync('../evil/real', at('out-then-in'));
  symlinkSync('chain-2', at('chain-1'));
  symlinkSync('abs-dir', at('chain-2'));
  // Loops: two links, a link to itself, and a directory link back up (finite only if nothing follows it).
  symlinkSync('loop-b', at('loop-a'));
  symlinkSync('loop-a', at('loop-b'));
  symlinkSync('self', at('self'));
  symlinkSync('..', at('real/sub/up'));
  symlinkSync('.', at('real/sub/back'));
  // /proc magic links, absolute and through a proc mount inside the tree.
  symlinkSync(`/proc/self/root${outside}`, at('proc-root'));
  symlinkSync('/proc/self/cwd', at('proc-cwd'));
  symlinkSync('/proc/thread-self/root', at('proc-thread'));
  symlinkSync('/proc/self/fd/0', at('proc-fd'));
  // Mounts and device nodes only root can make (the tests that need them say so when skipped).
  if (isRoot) {
    mkdirSync(at('procfs'));
    mount(['-t', 'proc', 'proc'], at('procfs'));
    symlinkSync(`procfs/self/root${outside}`, at('via-procfs'));
    // Mounts inside the tree: another file system, and the outside directory itself bound in.
    mkdirSync(at('tmpfs'));
    mount(['-t', 'tmpfs', 'none'], at('tmpfs'));
    writeFileSync(at(`tmpfs/${SECRET_NAME}`), SECRET);
    mkdirSync(at('holder/bound'), { recursive: true });
    mount(['--bind', outside], at('holder/bound'));
    expect(spawnSync('mknod', [at('null-dev'), 'c', '1', '3']).status, 'mknod').toBe(0);
  }
  // Special files where a file or a directory is expected.
  expect(spawnSync('mkfifo', [at('fifo')]).status).toBe(0);
  const sock = spawnSync('python3', [
    '-c',
    `import socket;socket.socket(socket.AF_UNIX).bind(${JSON.stringify(at('sock'))})`,
  ]);
  expect(sock.status, sock.stderr?.toString()).toBe(0);

  store = new TreeStore(data, { uid: 0, gid: 0, enabled: false });
  await store.start();
  tree = store.open(root)!;
});

/** Mount points under `base` now, deepest first (a remove may have moved one along with its directory). */
function mountsUnderBase(): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => base !== undefined && m.startsWith(base + '/'))
    .sort((a, b) => b.length - a.length);
}

afterAll(async () => {
  tree?.close();
  if (base) for (const m of mountsUnderBase()) spawnSync('umount', ['-l', m]);
  await store?.close();
  if (base) await rmTree(base);
});

const OUT = 'path_outside_namespace';
/** Paths that lead out of the root, each refused by every resolving operation. */
const LEAVING = [
  'abs-dir',
  `abs-dir/${SECRET_NAME}`,
  'abs-dir/dir/inner.txt',
  'abs-file',
  'up-dir',
  `up-dir/${SECRET_NAME}`,
  'up-file',
  'up-far',
  `up-far/${SECRET_NAME}`,
  'in-then-out',
  `in-then-out/${SECRET_NAME}`,
  'out-then-in',
  'out-then-in/file.txt',
  'chain-1',
  `chain-1/${SECRET_NAME}`,
  'loop-a',
  'loop-a/x',
  'self',
  // 41 links in one resolution: past the kernel's limit of 40 (ELOOP), though each stays inside.
  `real/sub/${'back/'.repeat(41)}deep.txt`,
  'proc-root',
  `proc-root/${SECRET_NAME}`,
  'proc-cwd',
  'proc-thread',
  'proc-fd',
];
/** Paths that leave the root through a mount inside it (root only). */
const THROUGH_MOUNTS = [
  'procfs',
  'procfs/self/root',
  'procfs/self/cwd',
  'via-procfs',
  `via-procfs/${SECRET_NAME}`,
  'tmpfs',
  `tmpfs/${SECRET_NAME}`,
  'holder/bound',
  `holder/bound/${SECRET_NAME}`,
];

/** Every resolving operation on each of `paths`: those that do not answer path_outside_namespace. */
async function notRefused(paths: string[]): Promise<string[]> {
  const wrong: string[] = [];
  for (const p of paths) {
    const got = {
      openFile: codeOf(() => tree.openFile(p)),
      openDir: codeOf(() => tree.openDir(p)),
      'openParent(p/x)': await asyncCodeOf(() => tree.openParent(`${p}/x`, false)),
      'openParent(p/new/x, create)': await asyncCodeOf(() => tree.openParent(`${p}/new/x`, true)),
      list: await asyncCodeOf(() => tree.list(p, true, 1000, 20)),
    };
    for (const [op, code] of Object.entries(got)) if (code !== OUT) wrong.push(`${op}(${p}) -> ${code}`);
  }
  return wrong;
}

/** What each operation answers on each special file, and what it should answer. */
async function specialAnswers(names: string[]): Promise<{ got: Record<string, string>; want: Record<string, string> }> {
  const got: Record<string, string> = {};
  const want: Record<string, string> = {};
  for (const s of names) {
    got[`openFile(${s})`] = codeOf(() => tree.openFile(s));
    got[`openDir(${s})`] = codeOf(() => tree.openDir(s));
    got[`openFile(${s}/x)`] = codeOf(() => tree.openFile(`${s}/x`));
    got[`openParent(${s}/x)`] = await asyncCodeOf(() => tree.openParent(`${s}/x`, false));
    got[`openParent(${s}/new/x, create)`] = await asyncCodeOf(() => tree.openParent(`${s}/new/x`, true));
    got[`list(${s})`] = await asyncCodeOf(() => tree.list(s, false, 1000, 20));
    Object.assign(want, {
      [`openFile(${s})`]: 'bad_request',
      [`openDir(${s})`]: 'not_a_directory',
      [`openFile(${s}/x)`]: 'path_not_found',
      [`openParent(${s}/x)`]: 'not_a_directory',
      [`openParent(${s}/new/x, create)`]: 'not_a_directory',
      [`list(${s})`]: 'not_a_directory',
    });
  }
  return { got, want };
}

describe('resolving on a hostile tree', () => {
  it('refuses every path that leaves the root as outside the namespace, for every operation', async () => {
    const before = [fingerprint(outside), fingerprint(victim)];
    expect(await notRefused(LEAVING)).toEqual([]);
    expect([fingerprint(outside), fingerprint(victim)]).toEqual(before);
  });

  it.runIf(isRoot)(
    `refuses every path through a proc, tmpfs or bind mount inside the root${needsRoot('mount')}`,
    async () => {
      const before = [fingerprint(outside), fingerprint(victim)];
      expect(await notRefused(THROUGH_MOUNTS)).toEqual([]);
      expect([fingerprint(outside), fingerprint(victim)]).toEqual(before);
    },
  );

  it('follows links that stay inside, and finds what is missing inside', async () => {
    symlinkSync('real', join(root, 'in-dir'));
    symlinkSync('real/sub/../file.txt', join(root, 'in-file'));
    symlinkSync('in-dir/sub', join(root, 'in-chain'));
    try {
      for (const p of ['real/file.txt', 'in-file', 'in-dir/file.txt', 'real/sub/up/file.txt', 'in-chain/up/file.txt']) {
        const { fd } = tree.openFile(p);
        expect(fs.readFileSync(fd, 'utf8'), p).toBe('inside');
        fs.closeSync(fd);
      }
      expect(codeOf(() => tree.openDir('in-chain'))).toBe('ok');
      expect(codeOf(() => tree.openFile('in-dir/nothing'))).toBe('path_not_found');
      expect(codeOf(() => tree.openDir('in-dir/nothing'))).toBe('path_not_found');
      const dir = await tree.openParent('in-chain/made/x', true);
      fs.closeSync(dir.fd);
      expect(lstatSync(join(root, 'real/sub/made')).isDirectory()).toBe(true);
    } finally {
      for (const n of ['in-dir', 'in-file', 'in-chain']) rmSync(join(root, n));
      rmSync(join(root, 'real/sub/made'), { recursive: true });
    }
  });

  it('answers FIFOs and sockets as no file and no directory, without blocking or creating', async () => {
    const before = fingerprint(root);
    const { got, want } = await specialAnswers(['fifo', 'sock']);
    expect(got).toEqual(want);
    expect(fingerprint(root)).toEqual(before);
  });

  it.runIf(isRoot)(`answers device nodes the same way${needsRoot('mknod')}`, async () => {
    const before = fingerprint(root);
    const { got, want } = await specialAnswers(['null-dev']);
    expect(got).toEqual(want);
    expect(fingerprint(root)).toEqual(before);
  });

  it(`lists, measures and walks the whole tree without following a link or crossing a mount${withoutRoot('mounts')}`, async () => {
    const before = [fingerprint(outside), fingerprint(victim)];
    // What the root really holds on its own file system, links not followed.
    const own = new Set<string>();
    let bytes = 0;
    let files = 0;
    const walk = (d: string, rel: string) => {
      for (const name of readdirSync(d)) {
        const st = lstatSync(join(d, name));
        const r = rel ? `${rel}/${name}` : name;
        own.add(r);
        if (st.isFile()) {
          bytes += st.size;
          files++;
        }
        if (st.isDirectory() && !mounts.includes(join(d, name))) walk(join(d, name), r);
      }
    };
    walk(root, '');

    const { entries, truncated } = await tree.list('', true, 1000, 20);
    expect(truncated).toBe(false);
    const listed = entries.map((e) => e.rel);
    expect(listed.filter((r) => !own.has(r))).toEqual([]);
    // The mount points are entries of the tree, but nothing on them is.
    expect(listed.filter((r) => /^(tmpfs|procfs|holder\/bound)\//.test(r))).toEqual([]);
    const linksOut = ['abs-dir', 'up-dir', 'up-far', 'in-then-out', 'out-then-in', 'chain-1', 'proc-root'];
    for (const link of isRoot ? [...linksOut, 'via-procfs'] : linksOut) {
      expect(entries.find((e) => e.rel === link)?.isDir, `${link} is shown as a link out: not a directory`).toBe(false);
    }
    expect(JSON.stringify(entries)).not.toContain(SECRET_NAME.replace('.txt', ''));

    const m = await tree.measure(1_000_000);
    expect(m).toEqual({ bytes, files, complete: true });

    const visited: string[] = [];
    await tree.walk({ visit: (e) => void visited.push(e.rel.toString()) });
    expect(visited.filter((r) => !own.has(r))).toEqual([]);
    expect(
      visited.some((r) => r.startsWith('tmpfs/') || r.startsWith('procfs/') || r.startsWith('holder/bound/')),
    ).toBe(false);
    expect([fingerprint(outside), fingerprint(victim)]).toEqual(before);
  });

  it('replaces a link or a special file with the written file, never writing through it', async () => {
    const before = [fingerprint(outside), fingerprint(victim)];
    symlinkSync(join(outside, SECRET_NAME), join(root, 'w-abs'));
    symlinkSync(`../victim/${SECRET_NAME}`, join(root, 'w-up'));
    expect(spawnSync('mkfifo', [join(root, 'w-fifo')]).status).toBe(0);
    for (const name of ['w-abs', 'w-up', 'w-fifo']) {
      await put(name, `written ${name}`);
      expect(lstatSync(join(root, name)).isFile(), name).toBe(true);
      expect(readFileSync(join(root, name), 'utf8')).toBe(`written ${name}`);
      rmSync(join(root, name));
    }
    expect([fingerprint(outside), fingerprint(victim)]).toEqual(before);
  });

  it(`removes links, special files and trees holding them without touching what they lead to${withoutRoot('device nodes')}`, async () => {
    const before = [fingerprint(outside), fingerprint(victim)];
    const t = (p: string) => join(root, 'doomed', p);
    mkdirSync(t('a/b/c'), { recursive: true });
    symlinkSync(outside, t('a/out'));
    symlinkSync('../../../victim', t('a/b/up'));
    symlinkSync(`/proc/self/root${outside}`, t('a/b/c/proc'));
    expect(spawnSync('mkfifo', [t('a/b/fifo')]).status).toBe(0);
    if (isRoot) expect(spawnSync('mknod', [t('a/dev'), 'c', '1', '3']).status).toBe(0);
    writeFileSync(t('a/b/c/x'), 'x');
    chmodSync(t('a/b'), 0o555);
    const names = ['doomed', 'abs-dir', 'up-dir', 'up-far', 'proc-root', 'fifo', 'sock'];
    for (const name of isRoot ? [...names, 'null-dev'] : names) {
      const dir = await tree.openParent(name, false);
      try {
        expect(await tree.remove(dir), name).toBe(true);
      } finally {
        fs.closeSync(dir.fd);
      }
      expect(lstatSync(join(root, name), { throwIfNoEntry: false }), `${name} is gone`).toBeUndefined();
    }
    expect([fingerprint(outside), fingerprint(victim)]).toEqual(before);
  });

  it.runIf(isRoot)(
    `never removes what a mount point inside a removed directory holds${needsRoot('mount')}`,
    async () => {
      const before = [fingerprint(outside), fingerprint(victim)];
      const onTmpfs = readdirSync(join(root, 'tmpfs'));
      for (const name of ['holder', 'tmpfs']) {
        const dir = await tree.openParent(name, false);
        try {
          await tree.remove(dir).catch(() => {
            // Refusing is fine (a mount point cannot be removed); removing what is on the mount is not.
          });
        } finally {
          fs.closeSync(dir.fd);
        }
      }
      expect([fingerprint(outside), fingerprint(victim)]).toEqual(before);
      const tmpfsNow = mountsUnderBase().filter((m) => m.endsWith('/tmpfs'));
      expect(tmpfsNow, 'the tmpfs is still mounted somewhere').toHaveLength(1);
      expect(readdirSync(tmpfsNow[0]!)).toEqual(onTmpfs);
    },
  );
});

describe('resolving while a directory is exchanged with a link out', () => {
  const ROUNDS = 3000;
  /** In the outside and the victim only: a measure or listing that slips shows it at once. */
  const BIG = 'big-outside.bin';

  it(
    'every operation stays beneath the root, whatever instant the exchange lands on',
    { timeout: 300_000 },
    async () => {
      const t = (p: string) => join(root, p);
      rmSync(t('d'), { recursive: true, force: true });
      rmSync(t('l'), { force: true });
      mkdirSync(t('d/sub'), { recursive: true });
      writeFileSync(t('d/f'), 'own f');
      writeFileSync(t('d/sub/x'), 'own x');
      // The outside and the victim mirror d's names, so a resolution that slips finds something to act on.
      for (const v of [outside, victim]) {
        mkdirSync(join(v, 'sub'), { recursive: true });
        writeFileSync(join(v, 'f'), SECRET);
        writeFileSync(join(v, 'sub', 'x'), SECRET);
        writeFileSync(join(v, BIG), Buffer.alloc(1024 * 1024, 's'));
      }
      symlinkSync(outside, t('l'));
      const before = [fingerprint(outside), fingerprint(victim)];
      const ctl = mkdtempSync(join(base, 'swapper-'));
      const cfg = {
        dir: root,
        targets: [outside, '../victim', '../'.repeat(20) + outside.slice(1), `/proc/self/root${outside}`],
        stop: join(ctl, 'stop'),
        ready: join(ctl, 'ready'),
        repoint_every: 53,
      };
      const racer = spawn('python3', [SWAPPER, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      racer.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      const exited = new Promise<number | null>((resolve) => racer.once('close', resolve));

      const problems = new Map<string, number>();
      const problem = (p: string) => problems.set(p, (problems.get(p) ?? 0) + 1);
      const succeeded = new Map<string, number>();
      /** Runs one operation: an AppError (a clear 4xx) is a fine answer; a raw system error would be a 500. */
      const attempt = async (op: string, fn: () => Promise<void> | void) => {
        try {
          await fn();
          succeeded.set(op, (succeeded.get(op) ?? 0) + 1);
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          if (typeof code !== 'string') throw err;
          if (/^E[A-Z0-9]+$/.test(code)) problem(`${op}: raw ${code} (the API would answer 500)`);
        }
      };
      try {
        while (!existsSync(cfg.ready)) {
          expect(racer.exitCode, 'the swapper exited before swapping').toBeNull();
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        // Stops early once it has clearly failed: a slipping resolver can be slow (it may walk the outside).
        for (let i = 0; i < ROUNDS && problems.size < 20; i++) {
          await attempt('openFile(d/f)', () => {
            const { fd } = tree.openFile('d/f');
            const text = fs.readFileSync(fd, 'utf8');
            fs.closeSync(fd);
            if (text !== 'own f') problem(`openFile(d/f) read ${JSON.stringify(text.slice(0, 40))}`);
          });
          await attempt('list(d)', async () => {
            const { entries } = await tree.list('d', true, 1000, 20);
            const seen = entries.filter((e) => e.name === BIG || e.name === SECRET_NAME || e.name === 'inner.txt');
            if (seen.length > 0) problem(`list(d) listed the outside's ${seen[0]!.name} (as ${seen[0]!.rel})`);
          });
          await attempt('write d/new/x (new parent)', () => put('d/new/x', 'own new'));
          await attempt('remove d/new', async () => {
            const dir = await tree.openParent('d/new', false);
            try {
              await tree.remove(dir);
            } finally {
              fs.closeSync(dir.fd);
            }
          });
          const victimName = i % 2 ? 'd/f' : 'd/sub';
          await attempt(`remove ${victimName}`, async () => {
            const dir = await tree.openParent(victimName, false);
            try {
              await tree.remove(dir);
            } finally {
              fs.closeSync(dir.fd);
            }
          });
          await attempt('write (recreate)', () => put(i % 2 ? 'd/f' : 'd/sub/x', i % 2 ? 'own f' : 'own x'));
          await attempt('measure', async () => {
            const m = await tree.measure(1_000_000);
            if (m.bytes >= 1024 * 1024) problem(`measure counted ${m.bytes} bytes: the outside's ${BIG} among them`);
          });
        }
      } finally {
        writeFileSync(cfg.stop, 'stop');
        await exited;
      }
      const stats = JSON.parse(out) as { swaps: number };
      expect(stats.swaps, 'the swapper really ran').toBeGreaterThan(ROUNDS);
      expect([...problems]).toEqual([]);
      // Each operation also succeeded on the real directory: the race did exercise it.
      for (const op of [
        'openFile(d/f)',
        'list(d)',
        'write d/new/x (new parent)',
        'remove d/new',
        'remove d/f',
        'remove d/sub',
        'measure',
      ]) {
        expect(succeeded.get(op) ?? 0, `${op} succeeded at least once`).toBeGreaterThan(0);
      }
      expect([fingerprint(outside), fingerprint(victim)]).toEqual(before);
    },
  );
});
