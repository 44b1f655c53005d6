/**
 * Runs the BUILT `trove` binary (packages/cli/dist/bin.js) as a user would, in a
 * temp HOME, with an environment that carries none of the runner's TROVE_* vars.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliBin } from '../../../../test/helpers/server.js';

export { cliBin };

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  home: string;
  env?: Record<string, string | undefined>;
  input?: string | Buffer;
  cwd?: string;
  timeoutMs?: number;
}

const homes: string[] = [];

/** A fresh empty HOME (removed by `cleanupHomes`). */
export function makeHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'trove-cli-home-'));
  homes.push(home);
  return home;
}

export function cleanupHomes(): void {
  for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
}

function envFor(opts: CliOptions): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: opts.home, LANG: 'C.UTF-8' };
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v !== undefined) env[k] = v;
  return env;
}

/** A running `trove` process whose output can be awaited (tail, listen, mcp serve). */
export interface RunningCli {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once `pred(stdout, stderr)` holds; rejects (with the output) after `timeoutMs`. */
  waitFor(pred: (stdout: string, stderr: string) => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves when the process exits. */
  exited: Promise<CliResult>;
}

export function startTrove(args: string[], opts: CliOptions): RunningCli {
  const proc = spawn(process.execPath, [cliBin, ...args], {
    env: envFor(opts),
    cwd: opts.cwd ?? opts.home,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const l of listeners) l();
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    for (const l of listeners) l();
  });
  if (opts.input !== undefined) proc.stdin!.end(opts.input);
  else proc.stdin!.end();
  const exited = new Promise<CliResult>((resolve) =>
    proc.once('close', (code, signal) => {
      for (const l of listeners) l();
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return {
    proc,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitFor(pred, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pred(stdout, stderr)) {
            clearTimeout(timer);
            listeners.delete(check);
            resolve();
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            clearTimeout(timer);
            listeners.delete(check);
            reject(
              new Error(
                `trove exited (${proc.exitCode ?? proc.signalCode}) before the condition held\nstdout:\n${stdout}\nstderr:\n${stderr}`,
              ),
            );
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting\nstdout:\n${stdout}\nstderr:\n${stderr}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
  };
}

/** Runs `trove args…` to completion. */
export async function trove(args: string[], opts: CliOptions): Promise<CliResult> {
  const running = startTrove(args, opts);
  const timer = setTimeout(() => running.proc.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
  try {
    return await running.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** `trove …` that must succeed; returns stdout. */
export async function troveOk(args: string[], opts: CliOptions): Promise<string> {
  const r = await trove(args, opts);
  if (r.code !== 0)
    throw new Error(`trove ${args.join(' ')} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r.stdout;
}

/** Saves a profile with `trove login` against `baseUrl`. */
export async function login(home: string, baseUrl: string, apiKey: string, extra: string[] = []): Promise<void> {
  await troveOk(['login', '--api-key', apiKey, '--base-url', baseUrl, ...extra], { home });
}
