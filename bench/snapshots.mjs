#!/usr/bin/env node
/**
 * Snapshot engine vs GNU tar on the same tree, in the same run:
 *
 *   create:  createArchive → LocalBlobStore.put (fsync'd blob)  vs  tar czf + fsync of the file
 *   restore: restoreArchive (validated staging tree, flushed with syncfs, atomic swap)
 *            vs  tar xzf into an empty directory + `sync -f` (the same flush)
 *   restore without the flush (durable: false) vs bare tar xzf, for the plain extraction cost.
 *
 * The tree: 10,000 files / 200 MiB in 100 directories, sizes log-uniform
 * 100 B–40 KiB plus 1% ~1 MiB files, half text-like (compressible) and half
 * random bytes, generated deterministically.
 *
 * Each of our operations runs in a fresh node process (like a server, but
 * without unrelated allocations), which reports its own wall time, CPU time
 * and RSS growth: peak RSS during the operation minus RSS just before it,
 * after a warm-up create + restore of a one-file tree (so the modules a
 * running server has already loaded are not counted as growth).
 * Rounds alternate which side goes first; ratios are medians of per-round
 * ratios, so load from other work on the machine hits both sides. Times are
 * also given as CPU time, which is steadier on a busy machine. Nothing is
 * deleted until the end: on ext4, creating files right after deleting
 * thousands makes the inode allocator scan recently freed inodes, which
 * would tax whichever side ran next (about 2× in our measurements).
 *
 * gzip level: ours uses DEFAULT_GZIP_LEVEL (4) and tar uses gzip's default 6.
 * The table shows both archive sizes, and an informational row runs our
 * create at level 6 too, so the trade-off is visible rather than hidden.
 *
 * Through the API (the issue's view: what a client waits for), on a running
 * server with its own data dir on the same disk: POST /v1/snapshots vs
 * tar czf + fsync of the same tree, and POST /v1/snapshots/{id}/restore over
 * the namespace's current tree vs tar xzf into an empty directory + sync -f.
 * The namespace is filled by importing a plain tar of the tree
 * (POST /v1/snapshots/import) and restoring it. 2,000 files / 40 MiB by
 * default (--api-files, --api-mib; --no-api skips it).
 *
 *   node bench/snapshots.mjs [--quick] [--files 10000] [--mib 200] [--rounds 3]
 *                            [--dir /path/on/the/disk/to/test] [--no-level6]
 *                            [--api-files 2000] [--api-mib 40] [--no-api]
 *
 * Needs the built server (npm run build) and GNU tar + gzip.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { promises as fsp, existsSync, mkdtempSync, rmSync, openSync, fsyncSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from './lib/args.mjs';
import { median, MiB } from './lib/stats.mjs';
import { atLeast, finish, loadLine, row } from './lib/report.mjs';
import { startServer } from './lib/server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const dist = process.env.TROVE_BENCH_DIST ?? join(here, '..', 'packages', 'server', 'dist');

/* ------------------------------------------------------------------ child */

/** One measured operation in a fresh process; prints a JSON line. */
async function child([op, ...args]) {
  const archive = await import(pathToFileURL(join(dist, 'snapshots', 'archive.js')).href);
  const { LocalBlobStore } = await import(pathToFileURL(join(dist, 'snapshots', 'blob-store.js')).href);
  await warmUp(archive, LocalBlobStore);
  globalThis.gc?.();
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let extra = {};
  if (op === 'create') {
    const [tree, blobDir, level] = args;
    const store = new LocalBlobStore(blobDir);
    await store.init();
    // The engine reads a tree through its root descriptor, as the server does.
    const rootFd = openSync(tree, 'r');
    try {
      const { stream, done } = archive.createArchive(rootFd, { level: Number(level) });
      const { sizeBytes } = await store.put('bench/snap.tar.gz', stream);
      extra = { ...(await done), sizeBytes };
    } finally {
      closeSync(rootFd);
    }
  } else if (op === 'restore') {
    const [blobDir, nsRoot, durable] = args;
    const store = new LocalBlobStore(blobDir);
    const limits = { maxBytes: 0, maxFiles: 0, maxEntryBytes: 0 };
    extra = await archive.restoreArchive(await store.get('bench/snap.tar.gz'), nsRoot, limits, {
      durable: durable === '1',
    });
  } else if (op === 'gunzip') {
    // The floor: Node's own streaming gunzip of the same blob, output discarded.
    const [blobDir] = args;
    const input = await new LocalBlobStore(blobDir).get('bench/snap.tar.gz');
    const gunzip = createGunzip({ chunkSize: 256 * 1024 });
    input.pipe(gunzip);
    await new Promise((resolve, reject) => {
      gunzip.on('data', () => {});
      gunzip.on('end', resolve);
      gunzip.on('error', reject);
    });
  } else {
    throw new Error(`unknown child op ${op}`);
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  // maxRSS covers spikes between samples; it can only overstate the growth.
  peak = Math.max(peak, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
  process.stdout.write(
    JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, rssGrowth: peak - rss0, ...extra }) + '\n',
  );
}

/**
 * One create and one restore of a one-file tree first, as a running server
 * would have done already: lazily loaded modules and compiled code are not
 * what "RSS growth of a snapshot" should measure.
 */
async function warmUp(archive, LocalBlobStore) {
  const dir = mkdtempSync(join(tmpdir(), 'trove-bench-warm-'));
  try {
    await fsp.mkdir(join(dir, 'tree'));
    await fsp.writeFile(join(dir, 'tree', 'f.txt'), 'warm');
    const store = new LocalBlobStore(join(dir, 'blobs'));
    await store.init();
    const rootFd = openSync(join(dir, 'tree'), 'r');
    try {
      const { stream, done } = archive.createArchive(rootFd);
      await store.put('w/warm.tar.gz', stream);
      await done;
    } finally {
      closeSync(rootFd);
    }
    const limits = { maxBytes: 0, maxFiles: 0, maxEntryBytes: 0 };
    await archive.restoreArchive(await store.get('w/warm.tar.gz'), join(dir, 'ws', 'namespaces', 'n'), limits);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runChild(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`child ${args[0]} exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop()));
    });
  });
}

/* ------------------------------------------------------------------- tar */

/** Runs a shell command; returns wall ms and the CPU ms of its children (bash `times`). */
function runShell(script) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn('bash', ['-c', `${script}\ntimes`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) return reject(new Error(`"${script}" exited with ${code}`));
      const lines = out.trim().split('\n');
      const toMs = (s) => {
        const m = /(\d+)m([\d.]+)s/.exec(s);
        return m ? (Number(m[1]) * 60 + Number(m[2])) * 1000 : 0;
      };
      const [u, s] = lines[lines.length - 1].split(/\s+/);
      resolve({ ms, cpuMs: toMs(u) + toMs(s) });
    });
  });
}

async function tarCreate(tree, out) {
  const r = await runShell(`tar czf ${q(out)} -C ${q(tree)} .`);
  const t0 = performance.now();
  const fd = openSync(out, 'r');
  fsyncSync(fd);
  closeSync(fd);
  return { ...r, msDurable: r.ms + (performance.now() - t0), sizeBytes: statSync(out).size };
}

async function tarExtract(archivePath, dir, flush) {
  await fsp.mkdir(dir, { recursive: true });
  return runShell(`tar xzf ${q(archivePath)} -C ${q(dir)}${flush ? ` && sync -f ${q(dir)}` : ''}`);
}

const q = (s) => `'${s.replaceAll("'", "'\\''")}'`;

/* ------------------------------------------------------------------ tree */

/** Deterministic pseudo-random bytes at memory speed (AES-CTR of zeros). */
function prng(seed) {
  const key = Buffer.alloc(32, 0);
  key.writeUInt32LE(seed, 0);
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16, 0));
  return (n) => c.update(Buffer.alloc(n));
}

async function buildTree(root, files, totalBytes) {
  const rnd = prng(42);
  let pool = rnd(64 * 1024);
  let at = 0;
  const u32 = () => {
    if (at === pool.length) {
      pool = rnd(64 * 1024);
      at = 0;
    }
    const v = pool.readUInt32LE(at) / 2 ** 32;
    at += 4;
    return v;
  };
  const words = Array.from({ length: 4000 }, (_, i) => ((i * 2654435761) >>> 0).toString(36).slice(0, 3 + (i % 9)));
  const corpusParts = [];
  for (let len = 0; len < 8 * MiB;) {
    const w = words[Math.floor(u32() ** 2 * words.length)] + (u32() < 0.08 ? '\n' : ' ');
    corpusParts.push(w);
    len += w.length;
  }
  const corpus = Buffer.from(corpusParts.join(''));
  const sizes = Array.from({ length: files }, (_, i) =>
    i % 100 === 0 ? MiB * (0.5 + u32()) : Math.exp(Math.log(100) + u32() * (Math.log(40 * 1024) - Math.log(100))),
  );
  const scale = totalBytes / sizes.reduce((a, b) => a + b, 0);
  let written = 0;
  for (let i = 0; i < files; i++) {
    const dir = join(root, `d${Math.floor(i / 1000)}`, `s${Math.floor(i / 100)}`);
    if (i % 100 === 0) await fsp.mkdir(dir, { recursive: true });
    const n = i === files - 1 ? totalBytes - written : Math.max(1, Math.round(sizes[i] * scale));
    const binary = i % 100 === 0 ? i % 200 === 0 : i % 2 === 1;
    let data;
    if (binary) data = rnd(n);
    else {
      const off = Math.floor(u32() * (corpus.length - n - 1));
      data = n < corpus.length ? corpus.subarray(off, off + n) : Buffer.concat([corpus, corpus]).subarray(0, n);
    }
    await fsp.writeFile(join(dir, `f${i}.${binary ? 'bin' : 'txt'}`), data);
    written += n;
  }
  return written;
}

/* ------------------------------------------------------------------ main */

async function main() {
  const args = parseArgs();
  const quick = args.has('quick');
  const files = args.num('files', quick ? 1000 : 10_000);
  const mib = args.num('mib', quick ? 20 : 200);
  const rounds = args.num('rounds', quick ? 1 : 3);
  const withLevel6 = !args.has('no-level6');
  if (!existsSync(join(dist, 'snapshots', 'archive.js'))) {
    console.error(`${dist}/snapshots/archive.js is missing: run \`npm run build\` first`);
    process.exit(1);
  }
  if (!(spawnSync('tar', ['--version']).stdout?.toString() ?? '').includes('GNU tar')) {
    console.error('GNU tar is required for the baseline');
    process.exit(1);
  }
  const { DEFAULT_GZIP_LEVEL } = await import(pathToFileURL(join(dist, 'snapshots', 'archive.js')).href);
  const work = mkdtempSync(join(args.str('dir', tmpdir()), 'trove-bench-snap-'));
  const log = (m) => process.stderr.write(m + '\n');
  try {
    log(loadLine('load at start'));
    const tree = join(work, 'tree');
    const t0 = performance.now();
    const total = await buildTree(tree, files, mib * MiB);
    log(
      `tree: ${files} files, ${(total / MiB).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s (${work})`,
    );
    const blobs = join(work, 'blobs');
    const tarOut = join(work, 'tar.tgz');
    const res = {
      create: [],
      tarCreate: [],
      restore: [],
      tarRestore: [],
      restoreNoFlush: [],
      tarRestoreBare: [],
      create6: [],
    };
    // Whatever the tree or the page cache held before: start both sides from the same state.
    spawnSync('sync');
    for (let r = 0; r < rounds; r++) {
      const oursFirst = r % 2 === 0;
      const pair = async (a, b) => (oursFirst ? [await a(), await b()] : [await b(), await a()].reverse());

      const [c, tc] = await pair(
        () => runChild(['create', tree, blobs, String(DEFAULT_GZIP_LEVEL)]),
        () => tarCreate(tree, tarOut),
      );
      if (c.fileCount !== files) throw new Error(`create archived ${c.fileCount} files, expected ${files}`);
      res.create.push(c);
      res.tarCreate.push(tc);
      log(
        `round ${r + 1}: create ${fmtS(c.ms)} (cpu ${fmtS(c.cpuMs)}) vs tar czf+fsync ${fmtS(tc.msDurable)} (cpu ${fmtS(tc.cpuMs)})`,
      );

      for (const durable of [true, false]) {
        const nsRoot = join(work, `ws-${r}-${durable}`, 'namespaces', 'bench');
        const tarDir = join(work, `tar-x-${r}-${durable}`);
        await fsp.mkdir(nsRoot, { recursive: true });
        spawnSync('sync'); // the previous step's dirty pages must not be flushed on either side's clock
        const [x, tx] = await pair(
          () => runChild(['restore', blobs, nsRoot, durable ? '1' : '0']),
          () => tarExtract(tarOut, tarDir, durable),
        );
        if (x.filesRestored !== files) throw new Error(`restore put back ${x.filesRestored} files, expected ${files}`);
        (durable ? res.restore : res.restoreNoFlush).push(x);
        (durable ? res.tarRestore : res.tarRestoreBare).push(tx);
        log(
          `round ${r + 1}: restore${durable ? '' : ' (no flush)'} ${fmtS(x.ms)} (cpu ${fmtS(x.cpuMs)}) vs tar xzf${durable ? '+sync' : ''} ${fmtS(tx.ms)} (cpu ${fmtS(tx.cpuMs)})`,
        );
      }
      if (withLevel6) {
        const c6 = await runChild(['create', tree, join(work, 'blobs6'), '6']);
        res.create6.push({ ...c6, tar: tc });
        log(`round ${r + 1}: create at level 6 ${fmtS(c6.ms)} (${(c6.sizeBytes / MiB).toFixed(1)} MiB)`);
      }
    }

    const ratio = (ours, base, f) => median(ours.map((o, i) => f(base[i]) / f(o)));
    const ms = (x) => x.ms;
    const cpu = (x) => x.cpuMs;
    const rows = [];
    const timeRow = (metric, ours, base, baseMs, note, target = true) => {
      const rr = median(ours.map((o, i) => baseMs(base[i]) / o.ms));
      rows.push(
        row({
          metric,
          unit: 'ms',
          ours: Math.round(median(ours.map(ms))),
          baseline: Math.round(median(base.map(baseMs))),
          ratio: rr,
          ...(target ? atLeast(rr, 1 / 1.2) : {}),
          note,
        }),
      );
    };
    const label = `${files} files / ${mib} MiB`;
    timeRow(
      `create ${label} (durable) vs tar czf + fsync`,
      res.create,
      res.tarCreate,
      (t) => t.msDurable,
      `gzip level ${DEFAULT_GZIP_LEVEL} vs tar's 6; target ≤ 1.2× tar's time`,
    );
    timeRow(
      `restore ${label} (durable) vs tar xzf + sync -f`,
      res.restore,
      res.tarRestore,
      ms,
      'validated, flushed, atomic swap; target ≤ 1.2× tar',
    );
    timeRow(
      `restore ${label} (no flush) vs tar xzf`,
      res.restoreNoFlush,
      res.tarRestoreBare,
      ms,
      'same work minus the flush; target ≤ 1.2× tar',
    );
    rows.push(
      row({
        metric: 'create CPU time vs tar czf',
        unit: 'ms',
        ours: Math.round(median(res.create.map(cpu))),
        baseline: Math.round(median(res.tarCreate.map(cpu))),
        ratio: ratio(res.create, res.tarCreate, cpu),
        note: 'informational: steadier than wall time on a busy machine',
      }),
    );
    rows.push(
      row({
        metric: 'restore CPU time vs tar xzf + sync -f',
        unit: 'ms',
        ours: Math.round(median(res.restore.map(cpu))),
        baseline: Math.round(median(res.tarRestore.map(cpu))),
        ratio: ratio(res.restore, res.tarRestore, cpu),
      }),
    );
    const rssLimit = 64 * MiB;
    for (const [name, xs] of [
      ['create', res.create],
      ['restore', [...res.restore, ...res.restoreNoFlush]],
    ]) {
      const worst = Math.max(...xs.map((x) => x.rssGrowth));
      rows.push(
        row({
          metric: `${name} RSS growth (worst round)`,
          unit: 'MiB',
          ours: Number((worst / MiB).toFixed(1)),
          ratio: null,
          target: '≤ 64 MiB',
          pass: worst <= rssLimit,
        }),
      );
    }
    const floor = await runChild(['gunzip', blobs]);
    rows.push(
      row({
        metric: 'RSS growth of a bare Node gunzip of the same archive',
        unit: 'MiB',
        ours: Number((floor.rssGrowth / MiB).toFixed(1)),
        ratio: null,
        note: 'informational: the floor set by zlib stream buffers and GC timing',
      }),
    );
    const ourSize = res.create[0].sizeBytes;
    const tarSize = res.tarCreate[0].sizeBytes;
    rows.push(
      row({
        metric: `archive size (level ${DEFAULT_GZIP_LEVEL} vs tar's gzip -6)`,
        unit: 'MiB',
        ours: Number((ourSize / MiB).toFixed(1)),
        baseline: Number((tarSize / MiB).toFixed(1)),
        ratio: tarSize / ourSize,
        note: 'informational: ratio < 1 means ours is larger',
      }),
    );
    if (withLevel6) {
      const rr = median(res.create6.map((c) => c.tar.msDurable / c.ms));
      rows.push(
        row({
          metric: "create at gzip level 6 (tar's level) vs tar czf + fsync",
          unit: 'ms',
          ours: Math.round(median(res.create6.map(ms))),
          baseline: Math.round(median(res.create6.map((c) => c.tar.msDurable))),
          ratio: rr,
          note: `informational: ${(res.create6[0].sizeBytes / MiB).toFixed(1)} MiB archive`,
        }),
      );
    }
    let apiRaw = null;
    if (!args.has('no-api')) {
      const apiFiles = args.num('api-files', quick ? 500 : 2000);
      const apiMib = args.num('api-mib', quick ? 10 : 40);
      apiRaw = await apiRounds(work, apiFiles, apiMib, Math.max(rounds, 3), log);
      const label = `${apiFiles} files / ${apiMib} MiB through the API`;
      const ratioOf = (ours, base) => median(ours.map((o, i) => base[i] / o));
      for (const [metric, ours, base, note] of [
        [
          `snapshot create ${label} vs tar czf + fsync`,
          apiRaw.create,
          apiRaw.tarCreate,
          'POST /v1/snapshots; target ≤ 1.0× tar',
        ],
        [
          `snapshot restore ${label} vs tar xzf + sync -f`,
          apiRaw.restore,
          apiRaw.tarRestore,
          'POST …/restore over the current tree; target ≤ 1.0× tar',
        ],
      ]) {
        const rr = ratioOf(ours, base);
        rows.push(
          row({
            metric,
            unit: 'ms',
            ours: Math.round(median(ours)),
            baseline: Math.round(median(base)),
            ratio: rr,
            ...atLeast(rr, 1),
            note,
          }),
        );
      }
    }
    finish('snapshots', rows, {
      params: { files, mib, rounds, level: DEFAULT_GZIP_LEVEL, dir: work },
      raw: { ...res, api: apiRaw },
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Snapshot create and restore through a running server, against GNU tar on the same tree; rounds alternate
 * which side goes first. Returns wall times in ms per round.
 */
async function apiRounds(work, files, mib, rounds, log) {
  const tree = join(work, 'api-tree');
  await buildTree(tree, files, mib * MiB);
  const plainTar = join(work, 'api-in.tar');
  await runShell(`tar cf ${q(plainTar)} -C ${q(tree)} .`);
  const server = await startServer();
  const out = { create: [], tarCreate: [], restore: [], tarRestore: [] };
  try {
    const headers = { authorization: `Bearer ${server.runtimeKey}`, 'x-namespace': 'bench-snapshots' };
    const call = async (method, path, body, type) => {
      const t0 = performance.now();
      const res = await fetch(server.baseUrl + path, {
        method,
        headers: { ...headers, ...(type ? { 'content-type': type } : {}) },
        body,
      });
      const text = await res.text();
      if (res.status !== 200 && res.status !== 201)
        throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
      return { ms: performance.now() - t0, body: JSON.parse(text) };
    };
    const imported = (await call('POST', '/v1/snapshots/import', await fsp.readFile(plainTar), 'application/x-tar'))
      .body;
    if (imported.file_count !== files)
      throw new Error(`import archived ${imported.file_count} files, expected ${files}`);
    await call('POST', `/v1/snapshots/${imported.snapshot_id}/restore`); // the namespace now holds the tree
    for (let r = 0; r < rounds; r++) {
      const oursFirst = r % 2 === 0;
      const pair = async (a, b) => (oursFirst ? [await a(), await b()] : [await b(), await a()].reverse());
      spawnSync('sync');
      const [c, tc] = await pair(
        () => call('POST', '/v1/snapshots', JSON.stringify({ label: `round ${r}` }), 'application/json'),
        () => tarCreate(tree, join(work, `api-tar-${r}.tgz`)),
      );
      out.create.push(c.ms);
      out.tarCreate.push(tc.msDurable);
      spawnSync('sync');
      const [x, tx] = await pair(
        () => call('POST', `/v1/snapshots/${imported.snapshot_id}/restore`),
        () => tarExtract(join(work, `api-tar-${r}.tgz`), join(work, `api-tar-x-${r}`), true),
      );
      if (x.body.files_restored !== files)
        throw new Error(`restore put back ${x.body.files_restored} files, expected ${files}`);
      out.restore.push(x.ms);
      out.tarRestore.push(tx.ms);
      log(
        `api round ${r + 1}: create ${fmtS(c.ms)} vs tar czf+fsync ${fmtS(tc.msDurable)}; restore ${fmtS(x.ms)} vs tar xzf+sync ${fmtS(tx.ms)}`,
      );
    }
  } finally {
    await server.close();
  }
  return out;
}

function fmtS(ms) {
  return `${(ms / 1000).toFixed(2)} s`;
}

// Last, so every module-level constant above is initialised.
if (process.argv[2] === '--child') await child(process.argv.slice(3));
else await main();
