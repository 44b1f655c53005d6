/**
 * Harness of the tree race tests (CVE-2018-15664's class): in namespace `evil` a hostile tenant keeps
 * exchanging its directory `d` with a symlink `l` to a victim (renameat2(RENAME_EXCHANGE), swapper.py),
 * while a test drives one files-API operation on `d/...` thousands of times. The attackers are a command in
 * the sandbox (through POST /v1/exec) and a process on the host working in the namespace's directory, which
 * stands in for a tenant process that the namespace lock cannot exclude.
 *
 * Victims: namespace `victim` of the same workspace and of another one (files written through the API) and a
 * root-owned host directory outside the data dir. `l` points at each of them in turn, by absolute host path
 * and by `..` climbs. Every victim is fingerprinted before and after (names, types, sizes, content hashes,
 * owner, mode, mtime, ctime); any difference, any victim content or name in a response, and any 5xx answer
 * fail the test with the details.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
  type BigIntStats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { Agent } from 'undici';
import { expect } from 'vitest';
import { api, type StartedServer, type StartOptions } from '../../../../../test/helpers/server.js';

/** Each operation is driven at least this many times while the attackers swap. */
export const ITERATIONS = 2000;
/** Below this many exchanges an attacker did not really run during the operations: the test proves nothing. */
const MIN_SWAPS = 1000;
/** The sandbox attacker is ended by a stop file; the exec timeout is only the backstop. */
const ATTACKER_LIMIT_MS = 600_000;
/** How long an attacker may take to make its first exchange. */
const READY_WAIT_MS = 30_000;
/** Exchanges between two re-pointings of `l` at the next victim. */
const REPOINT_EVERY = 61;

const SWAPPER = fileURLToPath(new URL('./swapper.py', import.meta.url));
/** For the attacker's exec, which answers only when the attack ends. */
const UNBOUNDED_WAIT = new Agent({ headersTimeout: 0, bodyTimeout: 0 });

/**
 * A vitest timeout for a race test that drives `iterations` operations: a few ms each on an idle machine,
 * far more when the whole suite shares two CPUs with the attackers; this bound is only for a hung test.
 */
export const raceTimeout = (iterations = ITERATIONS, msEach = 150) => 120_000 + iterations * msEach;

/** Server settings for a race test: signup for the second workspace, exec long enough for the attacker. */
export function raceServerOptions(env: Record<string, string> = {}): StartOptions {
  return {
    env: {
      TROVE_ALLOW_SIGNUP: '1',
      TROVE_EXEC_TIMEOUT_MS: String(ATTACKER_LIMIT_MS),
      TROVE_EXEC_CPU_SECONDS: String(ATTACKER_LIMIT_MS / 1000),
      ...env,
    },
  };
}

export interface Victim {
  label: string;
  dir: string;
  /** Strings found only in this victim: file contents and file names. None may appear in an answer. */
  tokens: string[];
}

type Fetcher = ReturnType<typeof api>;

interface Response {
  status: number;
  text: string;
}

interface Entry {
  type: string;
  size: bigint;
  sha256: string | null;
  link: string | null;
  uid: number;
  gid: number;
  mode: string;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

type Fingerprint = Map<string, Entry>;

function typeOf(st: BigIntStats): string {
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return 'device';
}

/** Every entry under `root` (itself included, as '.'), never following a link. */
export function fingerprint(root: string): Fingerprint {
  const out: Fingerprint = new Map();
  const walk = (abs: string, rel: string) => {
    const st = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
    if (!st) return;
    out.set(rel, {
      type: typeOf(st),
      size: st.size,
      sha256: st.isFile() ? createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 16) : null,
      link: st.isSymbolicLink() ? readlinkSync(abs) : null,
      uid: Number(st.uid),
      gid: Number(st.gid),
      mode: (Number(st.mode) & 0o7777).toString(8),
      mtimeNs: st.mtimeNs,
      ctimeNs: st.ctimeNs,
    });
    if (st.isDirectory()) {
      for (const name of readdirSync(abs).sort()) walk(join(abs, name), rel === '.' ? name : `${rel}/${name}`);
    }
  };
  walk(root, '.');
  return out;
}

const FIELDS: Array<[keyof Entry, string]> = [
  ['type', 'type'],
  ['size', 'size'],
  ['sha256', 'content sha256'],
  ['link', 'link target'],
  ['uid', 'uid'],
  ['gid', 'gid'],
  ['mode', 'mode'],
  ['mtimeNs', 'mtime (ns)'],
  ['ctimeNs', 'ctime (ns)'],
];

const TEMP_NAME = /^(?:(.*)\/)?\.trove-tmp-[^/]*$/;

/**
 * One line per changed path, deletions and changes first: what happened to it. The server's temp files
 * created in a victim are summed up per directory (there can be hundreds).
 */
export function diffFingerprints(before: Fingerprint, after: Fingerprint): string[] {
  const deleted: string[] = [];
  const changed: string[] = [];
  const created: string[] = [];
  const temps = new Map<string, { n: number; example: string }>();
  for (const [rel, b] of before) {
    const a = after.get(rel);
    if (!a) {
      deleted.push(`${rel}: DELETED (was a ${b.type}, ${b.size} bytes)`);
      continue;
    }
    const changes = FIELDS.filter(([k]) => a[k] !== b[k]).map(
      ([k, name]) => `${name} ${String(b[k])} -> ${String(a[k])}`,
    );
    if (changes.length > 0) changed.push(`${rel}: CHANGED (${changes.join(', ')})`);
  }
  for (const [rel, a] of after) {
    if (before.has(rel)) continue;
    const what = `${a.type}, ${a.size} bytes, uid ${a.uid}, gid ${a.gid}, mode ${a.mode}`;
    const temp = TEMP_NAME.exec(rel);
    if (temp) {
      const dir = temp[1] ?? '.';
      const t = temps.get(dir) ?? { n: 0, example: `${rel} (${what})` };
      t.n++;
      temps.set(dir, t);
    } else {
      created.push(`${rel}: CREATED (${what})`);
    }
  }
  for (const [dir, t] of temps) created.push(`${dir}: ${t.n} temp file(s) .trove-tmp-* CREATED, e.g. ${t.example}`);
  return [...deleted, ...changed, ...created];
}

function hex(n: number): string {
  return randomBytes(n).toString('hex');
}

/** `token\n` repeated to at least `min` bytes: large enough that counting it anywhere shows. */
function filler(token: string, min: number): string {
  return `${token}\n`.repeat(Math.ceil(min / (token.length + 1)));
}

/** The victim tree, the same in every victim: `f` and `sub/x` mirror the attacker's names, the rest is unique. */
function victimFiles(label: string): { files: Array<[string, string]>; tokens: string[] } {
  const id = hex(6);
  const uniqueFile = `victim-${id}.txt`;
  const uniqueDir = `deep-${id}`;
  const t = (what: string) => `VICTIM-${label}-${what}-${hex(8)}`;
  const tf = t('f');
  const tx = t('x');
  const tu = t('secret');
  const tb = t('big');
  return {
    files: [
      ['f', filler(tf, 1024)],
      ['sub/x', filler(tx, 1200)],
      [uniqueFile, filler(tu, 1100)],
      [`${uniqueDir}/big.txt`, filler(tb, 12_000)],
    ],
    tokens: [tf, tx, tu, tb, uniqueFile, uniqueDir],
  };
}

export interface AttackerStats {
  swaps: number;
  repoints: number;
  reopens: number;
  failures: Record<string, number>;
}

interface Attacker {
  name: string;
  /** Ends the attack and returns its counters. */
  stop(): Promise<AttackerStats>;
  /** Ends it without waiting (clean-up after a failure). */
  abort(): void;
}

export class Race {
  server: StartedServer;
  /** Runtime key, namespace `evil`. */
  evil!: Fetcher;
  /** Admin key of the first workspace (namespace delete). */
  admin!: Fetcher;
  readonly workspaceId: string;
  readonly evilDir: string;
  readonly victims: Victim[];
  /** Where `l` points, in turn: every victim, absolute and relative. */
  readonly targets: string[];
  /** Problem → how many times it was seen (request ids blanked so repeats count as one). */
  private readonly problems = new Map<string, number>();
  private readonly tally = new Map<string, Map<string, number>>();
  private readonly attackers: Attacker[] = [];
  private readonly stats: Array<[string, AttackerStats]> = [];
  private before: Fingerprint[] = [];
  private readonly tmp: string;
  /** A restarted server was given its data dir explicitly, so its close() leaves the dir: ours to remove. */
  private restarted = false;

  private constructor(server: StartedServer, evilDir: string, victims: Victim[], tmp: string) {
    this.server = server;
    this.workspaceId = server.workspaceId;
    this.evilDir = evilDir;
    this.victims = victims;
    this.tmp = tmp;
    this.bind();
    const rel = (v: Victim) => relative(evilDir, v.dir);
    const [same, other, host] = victims as [Victim, Victim, Victim];
    this.targets = [
      same.dir,
      host.dir,
      other.dir,
      rel(same),
      rel(host),
      rel(other),
      '../'.repeat(40) + host.dir.slice(1),
    ];
  }

  private bind(): void {
    this.evil = api(this.server, this.server.runtimeKey, 'evil');
    this.admin = api(this.server, this.server.adminKey);
  }

  /**
   * Victims (namespace `victim` in this and in a new workspace, a root-owned host directory), namespace
   * `evil` with `d/f`, `d/sub/x` and the link `l` (made by a command in the sandbox, as a tenant would).
   */
  static async setup(server: StartedServer): Promise<Race> {
    const tmp = mkdtempSync(join(tmpdir(), 'trove-race-'));
    const hostDir = realpathSync(mkdtempSync(join(tmpdir(), 'trove-race-host-')));
    try {
      return await Race.build(server, tmp, hostDir);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      rmSync(hostDir, { recursive: true, force: true });
      throw err;
    }
  }

  private static async build(server: StartedServer, tmp: string, hostDir: string): Promise<Race> {
    const json = { 'content-type': 'application/json' };
    const write = async (fetcher: Fetcher, path: string, content: string) => {
      const res = await fetcher('/write', { method: 'POST', headers: json, body: JSON.stringify({ path, content }) });
      expect(res.status, `setup: POST /write ${path}: ${await res.clone().text()}`).toBe(200);
    };

    const signup = await fetch(`${server.baseUrl}/v1/workspaces`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ name: 'other' }),
    });
    const signupBody = await signup.text();
    expect(signup.status, `setup: signup of a second workspace: ${signupBody}`).toBe(201);
    const other = JSON.parse(signupBody) as { workspace_id: string; api_key: string };

    const data = realpathSync(server.dataDir);
    const nsDir = (ws: string, ns: string) => join(data, 'workspaces', ws, 'namespaces', ns);
    const victims: Victim[] = [];
    for (const [label, ws, key] of [
      ['namespace `victim` of the same workspace', server.workspaceId, server.runtimeKey],
      ['namespace `victim` of another workspace', other.workspace_id, other.api_key],
    ] as const) {
      const v = victimFiles(label.includes('same') ? 'same-ws' : 'other-ws');
      const fetcher = api(server, key, 'victim');
      for (const [path, content] of v.files) await write(fetcher, path, content);
      victims.push({ label, dir: nsDir(ws, 'victim'), tokens: v.tokens });
    }
    chmodSync(hostDir, 0o755);
    const hv = victimFiles('host');
    for (const [path, content] of hv.files) {
      const parts = path.split('/');
      if (parts.length > 1) mkdirSync(join(hostDir, ...parts.slice(0, -1)), { recursive: true, mode: 0o755 });
      writeFileSync(join(hostDir, path), content, { mode: 0o644 });
    }
    victims.push({ label: `root-owned host directory ${hostDir}`, dir: hostDir, tokens: hv.tokens });

    const race = new Race(server, nsDir(server.workspaceId, 'evil'), victims, tmp);
    await race.makeEvilTree();
    const ln = await race.post('setup: ln -s in the sandbox', '/v1/exec', {
      command: `ln -s '${race.targets[0]}' workspace/l && test -L workspace/l && echo linked`,
    });
    expect(ln.status, `setup: exec (bubblewrap is required: npm run setup:toolbox): ${ln.text}`).toBe(200);
    expect(JSON.parse(ln.text), ln.text).toMatchObject({ exit_code: 0, stdout: 'linked\n' });
    for (const t of race.targets) expect(t, 'a target the attacker can quote').not.toMatch(/['"\\]/);
    race.before = victims.map((v) => fingerprint(v.dir));
    return race;
  }

  /** `d/f` and `d/sub/x` through the API (which creates the namespace). */
  async makeEvilTree(label = 'setup: POST /write'): Promise<void> {
    for (const [path, content] of [
      ['d/f', 'evil f\n'],
      ['d/sub/x', 'evil x\n'],
    ]) {
      const r = await this.post(label, '/write', { path, content });
      expect(r.status, `${label} ${path}: ${r.text}`).toBe(200);
    }
  }

  /** Stops the server and starts it again on the same data (other settings); the victims stay as they are. */
  async restart(env: Record<string, string>): Promise<void> {
    await this.server.stop();
    this.server = await this.server.restart(env);
    this.restarted = true;
    this.bind();
  }

  // ---- requests -------------------------------------------------------------------------------------------

  /**
   * One request as namespace `evil` (or with the admin key): counted under `label`; a 5xx or any victim
   * content or name in the answer is recorded as a problem.
   */
  async request(label: string, path: string, init: RequestInit = {}, as: 'evil' | 'admin' = 'evil'): Promise<Response> {
    const res = await (as === 'admin' ? this.admin : this.evil)(path, init);
    const text = await res.text();
    let code = '';
    if (res.status >= 400) {
      try {
        code = String((JSON.parse(text) as { code?: unknown }).code ?? '');
      } catch {
        code = '(no JSON body)';
      }
    }
    const outcome = `${res.status}${code ? ` ${code}` : ''}`;
    const counts = this.tally.get(label) ?? new Map<string, number>();
    counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    this.tally.set(label, counts);
    if (res.status >= 500) this.problem(`${label}: answered ${res.status}: ${text.slice(0, 300)}`);
    this.scan(`${label}: the answer (${res.status})`, Buffer.from(text));
    return { status: res.status, text };
  }

  post(label: string, path: string, body: unknown, as: 'evil' | 'admin' = 'evil'): Promise<Response> {
    if (body === undefined) return this.request(label, path, { method: 'POST' }, as);
    return this.request(
      label,
      path,
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
      as,
    );
  }

  /** Records a problem when `bytes` hold any victim's content or name. */
  scan(where: string, bytes: Buffer): void {
    for (const v of this.victims) {
      const found = v.tokens.filter((t) => bytes.includes(t));
      if (found.length > 0) this.problem(`${where} contains data of the ${v.label} (e.g. ${found[0]})`);
    }
  }

  problem(line: string): void {
    const key = line.replace(/\b(req|snap)-[0-9a-f]+/g, '$1-…');
    this.problems.set(key, (this.problems.get(key) ?? 0) + 1);
  }

  /** Runs fn(0..total-1) with `concurrency` clients. */
  async drive(total: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
    let next = 0;
    const results = await Promise.allSettled(
      Array.from({ length: concurrency }, async () => {
        while (next < total) await fn(next++);
      }),
    );
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /** How many answers `label` got with a status in [lo, hi]. */
  count(label: string, lo = 0, hi = 999): number {
    let n = 0;
    for (const [outcome, c] of this.tally.get(label) ?? []) {
      const status = Number(outcome.split(' ')[0]);
      if (status >= lo && status <= hi) n += c;
    }
    return n;
  }

  // ---- attackers ------------------------------------------------------------------------------------------

  /** The swap loop as a command in the sandbox (POST /v1/exec); resolves once it has swapped. */
  async startSandboxAttacker(): Promise<void> {
    const cfg = {
      dir: 'workspace',
      targets: this.targets,
      stop: 'workspace/.race-stop',
      ready: 'workspace/.race-ready',
      repoint_every: REPOINT_EVERY,
    };
    const script = readFileSync(SWAPPER, 'utf8');
    let finished: Response | null = null;
    // The attack lasts as long as the operations (minutes on a loaded machine): no client-side timeout on its
    // answer (fetch gives up on response headers after 300 s by default).
    const running = this.request('exec: the attacker in the sandbox', '/v1/exec', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: `exec python3 - '${JSON.stringify(cfg)}'`, stdin: script }),
      dispatcher: UNBOUNDED_WAIT,
    } as RequestInit).then((r) => (finished = r));
    const readyFile = join(this.evilDir, '.race-ready');
    await waitFor(
      () => existsSync(readyFile),
      () => (finished ? `the sandbox attacker ended before swapping: ${finished.status} ${finished.text}` : null),
      'the sandbox attacker to start swapping',
    );
    this.attackers.push({
      name: 'attacker in the sandbox (exec)',
      stop: async () => {
        // Written on the host, not through the API: ending the attack must not depend on the server.
        writeFileSync(join(this.evilDir, '.race-stop'), 'stop\n');
        const r = await running;
        expect(r.status, `the sandbox attacker's exec: ${r.text}`).toBe(200);
        const out = JSON.parse(r.text) as { exit_code: number; stdout: string; stderr: string };
        expect(out.exit_code, `the sandbox attacker failed: ${out.stderr}`).toBe(0);
        return JSON.parse(out.stdout) as AttackerStats;
      },
      abort: () => {
        if (existsSync(this.evilDir)) writeFileSync(join(this.evilDir, '.race-stop'), 'stop\n');
      },
    });
  }

  /**
   * The swap loop as a host process in the namespace's directory: a tenant process the namespace lock
   * cannot exclude. It holds the directory open and follows the tree where the server moves it (a restore,
   * a namespace delete), then opens the namespace's path again.
   */
  async startHostAttacker(): Promise<void> {
    const dir = mkdtempSync(join(this.tmp, 'host-attacker-'));
    const cfg = {
      dir: this.evilDir,
      targets: this.targets,
      stop: join(dir, 'stop'),
      ready: join(dir, 'ready'),
      repoint_every: REPOINT_EVERY,
    };
    const proc: ChildProcess = spawn('python3', [SWAPPER, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    let exitCode: number | null | undefined;
    const exited = new Promise<void>((resolve) =>
      proc.once('close', (code) => {
        exitCode = code;
        resolve();
      }),
    );
    await waitFor(
      () => existsSync(cfg.ready),
      () => (exitCode !== undefined ? `the host attacker exited (${exitCode}) before swapping: ${err}` : null),
      'the host attacker to start swapping',
    );
    this.attackers.push({
      name: 'attacker on the host',
      stop: async () => {
        writeFileSync(cfg.stop, 'stop\n');
        await exited;
        expect(exitCode, `the host attacker failed: ${err}`).toBe(0);
        return JSON.parse(out) as AttackerStats;
      },
      abort: () => {
        if (exitCode === undefined) proc.kill('SIGKILL');
      },
    });
  }

  // ---- snapshots ------------------------------------------------------------------------------------------

  /** The stored archive of a snapshot, decompressed (the local blob store keeps `<ws>/<id>.tar.gz`). */
  snapshotArchive(id: string): Buffer {
    const blobs = join(this.server.dataDir, 'blobs');
    const found: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else if (e.name.startsWith(`${id}.`)) found.push(join(d, e.name));
      }
    };
    if (existsSync(blobs)) walk(blobs);
    expect(found, `the stored archive of ${id} under ${blobs}`).toHaveLength(1);
    return gunzipSync(readFileSync(found[0]!));
  }

  // ---- verdict --------------------------------------------------------------------------------------------

  /**
   * Stops the attackers, then fails with every problem seen: victim paths that changed (and how), answers
   * that carried victim data, 5xx answers, operations driven too few times, attackers that did not run.
   * `driven`: the operations' labels, each needing ITERATIONS answers (or `minimum`) and at least one 2xx.
   */
  async finish(driven: string[], minimum = ITERATIONS): Promise<void> {
    // One at a time, each removed only once stopped: close() aborts whatever a failure left running.
    while (this.attackers.length > 0) {
      const a = this.attackers[0]!;
      this.stats.push([a.name, await a.stop()]);
      this.attackers.shift();
    }
    const lines: string[] = [];
    this.victims.forEach((v, i) => {
      const diff = diffFingerprints(this.before[i]!, fingerprint(v.dir));
      if (diff.length > 0) {
        lines.push(`The ${v.label} (${v.dir}) was modified, ${diff.length} path(s):`);
        lines.push(...diff.slice(0, 40).map((l) => `  ${l}`));
        if (diff.length > 40) lines.push(`  ... and ${diff.length - 40} more`);
      }
    });
    if (this.problems.size > 0) {
      lines.push('Problems in answers:');
      const all = [...this.problems];
      lines.push(...all.slice(0, 40).map(([p, n]) => `  ×${n} ${p}`));
      if (all.length > 40) lines.push(`  ... and ${all.length - 40} more`);
    }
    for (const label of driven) {
      const n = this.count(label);
      if (n < minimum) lines.push(`${label} was driven ${n} times, fewer than ${minimum}`);
      if (this.count(label, 200, 299) === 0) lines.push(`${label} never succeeded: the race did not exercise it`);
    }
    for (const [name, s] of this.stats) {
      if (s.swaps < MIN_SWAPS)
        lines.push(`the ${name} exchanged d and l only ${s.swaps} times: the attack did not run`);
    }
    const errors = this.serverErrors();
    if (errors.length > 0) {
      lines.push("The server's logged errors (what the 5xx answers hide):");
      lines.push(...errors.map((e) => `  ${e}`));
    }
    if (lines.length > 0) {
      lines.push('Answers by operation:');
      for (const [label, counts] of this.tally) {
        lines.push(`  ${label}: ${[...counts].map(([o, c]) => `${o} ×${c}`).join(', ')}`);
      }
      lines.push(`Attackers: ${this.stats.map(([n, s]) => `${n} ${JSON.stringify(s)}`).join('; ')}`);
    }
    expect(lines.join('\n'), 'zero effects on the victims').toBe('');
  }

  /** Distinct errors the server logged (pino level error and above), most frequent first, with their counts. */
  private serverErrors(): string[] {
    const seen = new Map<string, number>();
    for (const line of this.server.output().split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as {
          level?: number;
          msg?: string;
          err?: { message?: string; code?: string; stack?: string };
        };
        if ((entry.level ?? 0) < 50) continue;
        // The first frame past the syscall wrappers says which operation failed.
        const frames = (entry.err?.stack ?? '')
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l.startsWith('at '));
        const where = frames.find((f) => !/\/tree\/sys\.|node:internal|new Promise/.test(f)) ?? frames[0] ?? '';
        const key = `${entry.msg ?? ''}: ${entry.err?.message ?? ''}${where ? ` (${where})` : ''}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      } catch {
        /* not a log line */
      }
    }
    return [...seen]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([k, n]) => `×${n} ${k}`);
  }

  /** Ends the attackers (if a test failed half-way), the server and the temp directories. */
  async close(): Promise<void> {
    for (const a of this.attackers.splice(0)) a.abort();
    await this.server.close();
    if (this.restarted) rmSync(this.server.dataDir, { recursive: true, force: true });
    rmSync(this.tmp, { recursive: true, force: true });
    const host = this.victims[2];
    if (host) rmSync(host.dir, { recursive: true, force: true });
  }
}

/** Polls `cond` (every few ms) until it holds; `failed` ends the wait early with a reason. */
export async function waitFor(
  cond: () => boolean,
  failed: () => string | null,
  what: string,
  timeoutMs = READY_WAIT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    const reason = failed();
    if (reason) throw new Error(reason);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Sets up the race on `server`, runs `fn`, and always cleans up (the server too). */
export async function withRace(server: StartedServer, fn: (race: Race) => Promise<void>): Promise<void> {
  let race: Race | null = null;
  try {
    race = await Race.setup(server);
    await fn(race);
  } finally {
    if (race) await race.close();
    else await server.close();
  }
}
