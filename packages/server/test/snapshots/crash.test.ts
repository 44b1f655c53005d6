/**
 * kill -9 during restore: a child process restores a large archive and is
 * SIGKILLed at named phases (TROVE_TEST_CRASH_AT, acted on by the preload
 * test/helpers/crash-at.mjs, which listens to the restore's diagnostics channel) and at progress points
 * chosen by the parent; after recoverInterruptedRestores the namespace must
 * be exactly the old tree or exactly the new one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createWriteStream, promises as fsp, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { recoverInterruptedRestores, TREES_DIR } from '../../src/snapshots/archive.js';
import { crashAtPreload } from '../../../../test/helpers/server.js';
import { archiveDir, manifest, pseudoRandom, rmTree, transpileSnapshots, type ManifestEntry } from './support.js';

let work: string;
let childScript: string;
let newTgz: string;
let newManifest: ManifestEntry[];
let oldManifest: ManifestEntry[];
const NEW_FILES = 300;
const NEW_FILE_BYTES = 512 * 1024; // 300 × 512 KiB = 150 MiB

/** 300 files / 150 MiB; content compresses well so the test spends its time restoring, not inflating. */
async function buildNewTree(root: string): Promise<void> {
  const block = pseudoRandom(16 * 1024, 99);
  const body = Buffer.alloc(NEW_FILE_BYTES);
  for (let off = 0; off < body.length; off += block.length) block.copy(body, off);
  for (let i = 0; i < NEW_FILES; i++) {
    const dir = join(root, `dir${i % 10}`);
    await fsp.mkdir(dir, { recursive: true });
    body.write(`file ${i} of the new tree\n`, 0);
    const p = join(dir, `new-${i}.bin`);
    await fsp.writeFile(p, body);
    await fsp.utimes(p, 1_700_000_000 + i, 1_700_000_000 + i);
  }
}

/** The namespace as it was before the restore: other names, other contents, several top-level entries. */
async function buildOldTree(root: string): Promise<void> {
  await fsp.mkdir(root, { recursive: true });
  for (let d = 0; d < 8; d++) {
    const dir = join(root, `old${d}`);
    await fsp.mkdir(dir);
    for (let f = 0; f < 5; f++) {
      const p = join(dir, `old-${f}.dat`);
      await fsp.writeFile(p, pseudoRandom(128 * 1024, d * 10 + f + 1));
      await fsp.utimes(p, 1_500_000_000 + f, 1_500_000_000 + f);
    }
    await fsp.utimes(dir, 1_500_000_100, 1_500_000_100);
  }
  await fsp.symlink('old0/old-0.dat', join(root, 'old-link'));
  await fsp.lutimes(join(root, 'old-link'), 1_500_000_150, 1_500_000_150);
  await fsp.writeFile(join(root, 'dir0'), 'a file where the new tree has a directory');
  await fsp.utimes(join(root, 'dir0'), 1_500_000_200, 1_500_000_200);
  await fsp.utimes(root, 1_500_000_300, 1_500_000_300);
}

interface Run {
  nsRoot: string;
  namespacesDir: string;
  trees: string;
  signal: NodeJS.Signals | null;
  code: number | null;
  output: string;
}

/** Restores new.tgz over a fresh old tree in a child; optionally SIGKILLs it after `killAfter` progress lines. */
async function runChild(opts: { crashAt?: string; killAfter?: number }): Promise<Run> {
  const ws = await fsp.mkdtemp(join(work, 'ws-'));
  const namespacesDir = join(ws, 'namespaces');
  const nsRoot = join(namespacesDir, 'ns');
  await buildOldTree(nsRoot);
  const env = { ...process.env, TROVE_TEST_CRASH_AT: opts.crashAt ?? '' };
  const child = spawn(process.execPath, ['--import', crashAtPreload, childScript, newTgz, nsRoot], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let lines = 0;
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    const s = d.toString();
    output += s;
    lines += s.split('\n').filter((l) => l.startsWith('progress')).length;
    if (opts.killAfter !== undefined && lines >= opts.killAfter && child.exitCode === null) child.kill('SIGKILL');
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  return { nsRoot, namespacesDir, trees: join(ws, TREES_DIR), signal, code, output };
}

async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(
    () => true,
    () => false,
  );
}

async function recoverAndClassify(run: Run): Promise<'old' | 'new'> {
  await recoverInterruptedRestores(run.namespacesDir);
  expect(await fsp.readdir(run.trees)).toEqual([]);
  const got = await manifest(run.nsRoot);
  if (JSON.stringify(got) === JSON.stringify(newManifest)) return 'new';
  expect(got).toEqual(oldManifest); // neither: show the difference against the old tree
  return 'old';
}

beforeAll(async () => {
  work = await fsp.mkdtemp(join(tmpdir(), 'trove-snap-crash-'));
  const modDir = join(work, 'mod');
  const archiveJs = transpileSnapshots(modDir);
  childScript = join(modDir, 'child.mjs');
  writeFileSync(
    childScript,
    `import { createReadStream } from 'node:fs';
import { restoreArchive } from ${JSON.stringify(archiveJs)};
const [tgz, nsRoot] = process.argv.slice(2);
const res = await restoreArchive(createReadStream(tgz), nsRoot, { maxBytes: 0, maxFiles: 0, maxEntryBytes: 0 }, {
  onProgress: (p) => process.stdout.write('progress ' + p.entries + '\\n'),
});
process.stdout.write('done ' + res.filesRestored + '\\n');
`,
  );
  const newTree = join(work, 'new-tree');
  await buildNewTree(newTree);
  newManifest = await manifest(newTree);
  newTgz = join(work, 'new.tar.gz');
  const { stream, done } = archiveDir(newTree, { level: 1 });
  await pipeline(stream, createWriteStream(newTgz));
  await done;
  await rmTree(newTree);
  const oldTree = join(work, 'old-tree');
  await buildOldTree(oldTree);
  oldManifest = await manifest(oldTree);
  await rmTree(oldTree);
  expect(newManifest.filter((e) => e.type === 'file').reduce((a, e) => a + e.size, 0)).toBe(150 * 1024 * 1024);
}, 300_000);

afterAll(async () => {
  if (work) await rmTree(work);
});

describe('kill -9 during restore', () => {
  it('completes normally without a crash hook (control)', async () => {
    const run = await runChild({});
    expect([run.code, run.signal, run.output.trim().split('\n').pop()]).toEqual([0, null, `done ${NEW_FILES}`]);
    expect(await recoverAndClassify(run)).toBe('new');
  });

  // Each phase is checked to have really been reached (the on-disk state
  // before recovery), then recovery must produce the documented outcome.
  it('mid-extract → old tree', async () => {
    const run = await runChild({ crashAt: 'mid-extract:150' });
    expect(run.signal).toBe('SIGKILL');
    expect((await fsp.readdir(run.trees)).some((n) => n.includes('-new-'))).toBe(true);
    expect(await recoverAndClassify(run)).toBe('old');
  });

  it('extracted and flushed, before the swap → old tree', async () => {
    const run = await runChild({ crashAt: 'before-swap' });
    expect(run.signal).toBe('SIGKILL');
    expect(run.output).toContain(`progress ${NEW_FILES + 10}`); // every entry (files + dirs + root) was extracted
    expect(await recoverAndClassify(run)).toBe('old');
  });

  it('between the two renames (namespace root missing) → rolled back to the old tree', async () => {
    const run = await runChild({ crashAt: 'mid-swap' });
    expect(run.signal).toBe('SIGKILL');
    expect(await exists(run.nsRoot)).toBe(false);
    expect(await recoverAndClassify(run)).toBe('old');
  });

  it('after the commit rename, before the old tree is deleted → new tree', async () => {
    const run = await runChild({ crashAt: 'after-swap' });
    expect(run.signal).toBe('SIGKILL');
    expect((await fsp.readdir(run.trees)).some((n) => n.includes('-old-'))).toBe(true);
    expect(await recoverAndClassify(run)).toBe('new');
  });

  it('half-way through deleting the old tree → new tree', async () => {
    const run = await runChild({ crashAt: 'mid-cleanup:3' });
    expect(run.signal).toBe('SIGKILL');
    const old = (await fsp.readdir(run.trees)).find((n) => n.includes('-old-'))!;
    expect((await fsp.readdir(join(run.trees, old))).length).toBeGreaterThan(0);
    expect(await recoverAndClassify(run)).toBe('new');
  });

  it('killed from outside at assorted progress points → entirely old or entirely new', async () => {
    const outcomes: string[] = [];
    for (const killAfter of [1, 97, 211, NEW_FILES + 10]) {
      const run = await runChild({ killAfter });
      outcomes.push(`${killAfter}:${run.signal ?? run.code}:${await recoverAndClassify(run)}`);
    }
    // Which side each lands on depends on timing; that it is one side or the other does not.
    expect(outcomes).toHaveLength(4);
  });
});

describe('recoverInterruptedRestores on hand-made states', () => {
  async function layout() {
    const ws = await fsp.mkdtemp(join(work, 'rec-'));
    const namespacesDir = join(ws, 'namespaces');
    const trees = join(ws, TREES_DIR);
    await fsp.mkdir(namespacesDir, { recursive: true });
    await fsp.mkdir(trees);
    return { namespacesDir, trees };
  }
  const id = '0123456789abcdef';

  it('does nothing when there is no .trees directory', async () => {
    const ws = await fsp.mkdtemp(join(work, 'rec-'));
    await fsp.mkdir(join(ws, 'namespaces'));
    await recoverInterruptedRestores(join(ws, 'namespaces'));
    expect(await fsp.readdir(ws)).toEqual(['namespaces']);
  });

  it('rolls back a swap caught between its renames, discarding a re-created empty root', async () => {
    const { namespacesDir, trees } = await layout();
    await fsp.mkdir(join(trees, `${id}-old-my.ns`));
    await fsp.writeFile(join(trees, `${id}-old-my.ns`, 'old.txt'), 'old');
    await fsp.mkdir(join(trees, `${id}-new-my.ns`));
    await fsp.writeFile(join(trees, `${id}-new-my.ns`, 'new.txt'), 'new');
    await fsp.mkdir(join(namespacesDir, 'my.ns')); // e.g. re-created by a request in the gap
    await recoverInterruptedRestores(namespacesDir);
    expect(await fsp.readdir(join(namespacesDir, 'my.ns'))).toEqual(['old.txt']);
    expect(await fsp.readdir(trees)).toEqual([]);
  });

  it('finishes a committed swap and removes never-swapped staging trees and debris', async () => {
    const { namespacesDir, trees } = await layout();
    await fsp.mkdir(join(namespacesDir, 'a'));
    await fsp.writeFile(join(namespacesDir, 'a', 'current.txt'), 'current');
    await fsp.mkdir(join(trees, `${id}-old-a`));
    await fsp.mkdir(join(namespacesDir, 'b'));
    await fsp.writeFile(join(namespacesDir, 'b', 'current.txt'), 'current');
    await fsp.mkdir(join(trees, `fedcba9876543210-new-b`));
    await fsp.mkdir(join(trees, `fedcba9876543210-new-b`, 'ro'), { mode: 0o500 });
    await fsp.writeFile(join(trees, 'garbage'), 'x');
    await recoverInterruptedRestores(namespacesDir);
    expect(await fsp.readdir(join(namespacesDir, 'a'))).toEqual(['current.txt']);
    expect(await fsp.readdir(join(namespacesDir, 'b'))).toEqual(['current.txt']);
    expect(await fsp.readdir(trees)).toEqual([]);
  });
});
