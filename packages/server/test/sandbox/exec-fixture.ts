/**
 * Shared set-up for the exec runner tests: a temp "data dir" shaped like the
 * server's (0700, a database file, sibling namespaces with secrets) and an
 * SandboxRunner over it with small limits so limit tests finish fast.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { SandboxRunner, type ExecOptions, type ExecRequest } from '../../src/sandbox/runner.js';
import { isRoot } from '../../../../test/helpers/root.js';

export { isRoot };
/** The uid commands run as: 64000 when the tests run as root, else our own. */
export const execUid = isRoot ? 64000 : process.getuid!();
export const execGid = isRoot ? 64000 : process.getgid!();

function which(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/bin']) {
    try {
      if (dir && statSync(join(dir, name)).isFile()) return join(dir, name);
    } catch {
      /* not here */
    }
  }
  return null;
}

/** Tests skip (visibly, with this reason) only when bubblewrap is not installed at all. */
export const bwrapPath = which('bwrap');
export const SKIP_REASON = 'SKIPPED: bubblewrap (bwrap) is not installed; run `npm run setup:toolbox`';

export const testOptions: ExecOptions = {
  timeoutMs: 10_000,
  network: false,
  insecure: false,
  uid: execUid,
  gid: execGid,
  maxOutputBytes: 1024 * 1024,
  cpuSeconds: 30,
  memoryBytes: 512 * 1024 * 1024,
  maxProcs: 64,
  maxFileBytes: 8 * 1024 * 1024,
  maxOpenFiles: 256,
  perNamespaceConcurrency: 4,
  perWorkspaceConcurrency: 8,
  globalConcurrency: 8,
  queueTimeoutMs: 2_000,
};

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  obj: unknown;
  msg?: string;
}

export function recordingLogger() {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object | string, msg?: string) => lines.push({ level, obj, msg });
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } };
}

export interface Fixture {
  /** The fake data dir (0700, like the server's). */
  dataDir: string;
  dbPath: string;
  /** Namespace roots: `a` is the one under test, `b` its sibling with a secret. */
  nsA: string;
  nsB: string;
  secretB: string;
  dbSecret: string;
  svc: SandboxRunner;
  logs: LogLine[];
  run(command: string, extra?: Partial<ExecRequest>): ReturnType<SandboxRunner['run']>;
  /** Another namespace of `ws-test`: its directory, made empty if new. */
  namespace(name: string): { name: string; dir: string };
  /** `command` in the namespace `ns` (no init script). */
  runIn(ns: { name: string; dir: string }, command: string): ReturnType<SandboxRunner['run']>;
  cleanup(): Promise<void>;
}

export async function createFixture(opts: Partial<ExecOptions> = {}): Promise<Fixture> {
  const dataDir = mkdtempSync(join(tmpdir(), 'trove-exec-test-'));
  chmodSync(dataDir, 0o700);
  const nsA = join(dataDir, 'workspaces', 'ws-test', 'namespaces', 'a');
  const nsB = join(dataDir, 'workspaces', 'ws-test', 'namespaces', 'b');
  mkdirSync(nsA, { recursive: true });
  mkdirSync(nsB, { recursive: true });
  const secretB = `sibling-secret-${Math.random().toString(36).slice(2)}`;
  writeFileSync(join(nsB, 'secret.txt'), secretB);
  const dbSecret = `db-secret-${Math.random().toString(36).slice(2)}`;
  const dbPath = join(dataDir, 'trove.db');
  writeFileSync(dbPath, dbSecret, { mode: 0o644 });
  const { lines, logger } = recordingLogger();
  const svc = new SandboxRunner({ ...testOptions, ...opts }, logger);
  const status = await svc.init();
  if (!status.available) {
    throw new Error(`exec sandbox unavailable although bwrap is installed: ${status.reason} — fix: ${status.fix}`);
  }
  // As root, first calls take a pre-made sandbox when the pool holds one: filled first, so the tests run in claimed ones.
  if (!(await waitFor(() => svc.status().pool.ready >= svc.status().pool.size, 30_000))) {
    throw new Error(`the sandbox pool did not fill: ${JSON.stringify(svc.status().pool)}`);
  }
  return {
    dataDir,
    dbPath,
    nsA,
    nsB,
    secretB,
    dbSecret,
    svc,
    logs: lines,
    run: (command, extra = {}) =>
      svc.run({ workspaceId: 'ws-test', namespace: 'a', nsRoot: nsA, command, sourceInit: true, ...extra }),
    namespace: (name) => {
      const dir = join(dataDir, 'workspaces', 'ws-test', 'namespaces', name);
      mkdirSync(dir, { recursive: true });
      return { name, dir };
    },
    runIn: (ns, command) =>
      svc.run({ workspaceId: 'ws-test', namespace: ns.name, nsRoot: ns.dir, command, sourceInit: false }),
    cleanup: async () => {
      await svc.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A number no other process on the machine has in its command line. */
export function marker(): string {
  return String(700000 + Math.floor(Math.random() * 299999));
}

/** Pids whose command line mentions `needle` (other than this test process). */
export function processesMentioning(needle: string): Array<{ pid: number; cmd: string }> {
  const out: Array<{ pid: number; cmd: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${name}/status`, 'utf8'))?.[1];
      // A zombie is already dead; only its exit status waits to be collected.
      if (cmd.includes(needle) && state !== 'Z') out.push({ pid: Number(name), cmd });
    } catch {
      /* exited while we looked */
    }
  }
  return out;
}

/** The host can still start processes (what a fork bomb would take away). */
export function hostCanSpawn(): boolean {
  try {
    return execFileSync('/bin/sh', ['-c', 'echo alive'], { encoding: 'utf8', timeout: 5000 }).trim() === 'alive';
  } catch {
    return false;
  }
}

const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/**
 * Writes the runner's code (src/errors.ts, src/native.ts and src/sandbox/*.ts), transpiled
 * the way tsc emits it, to `<out>/code/`, so a child node process (another
 * user, or one the test kills) can run it: `import('<out>/code/sandbox/runner.js')`.
 */
export function transpileSandboxCode(out: string): string {
  const code = join(out, 'code');
  for (const rel of [
    'errors.ts',
    'ids.ts',
    'native.ts',
    ...readdirSync(join(srcDir, 'sandbox')).map((n) => `sandbox/${n}`),
  ]) {
    if (!rel.endsWith('.ts')) continue;
    const js = ts.transpileModule(readFileSync(join(srcDir, rel), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    }).outputText;
    mkdirSync(dirname(join(code, rel)), { recursive: true, mode: 0o755 });
    writeFileSync(join(code, rel.replace(/\.ts$/, '.js')), js, { mode: 0o644 });
  }
  writeFileSync(join(code, 'package.json'), '{"type":"module"}', { mode: 0o644 });
  // trove-enter and the addon, where runner.ts and native.ts look for them (build/Release beside code/).
  const release = join(out, 'build', 'Release');
  mkdirSync(release, { recursive: true, mode: 0o755 });
  for (const name of ['trove-enter', 'trove_native.node']) {
    copyFileSync(join(srcDir, '..', 'build', 'Release', name), join(release, name));
    chmodSync(join(release, name), 0o755);
  }
  return code;
}

/** Polls `check` until it holds or `ms` pass; returns its last answer. */
export async function waitFor(check: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}
