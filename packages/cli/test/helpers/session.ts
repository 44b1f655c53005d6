/**
 * The set-up the end-to-end test files share: a real server for the file and, for CLI
 * tests, a temp HOME whose default profile is logged in to it with `trove login`. Call
 * at the top level of a test file; the returned object is filled in by `beforeAll`.
 */
import { afterAll, beforeAll, vi } from 'vitest';
import { startServer, type StartOptions, type StartedServer } from '../../../../test/helpers/server.js';
import {
  cleanupHomes,
  login,
  makeHome,
  startTrove,
  trove,
  troveOk,
  type CliOptions,
  type CliResult,
  type RunningCli,
} from './cli.js';

export interface ServerSession {
  server: StartedServer;
}

export interface CliSession extends ServerSession {
  /** A HOME whose default profile uses `server`'s runtime key (its admin key with `admin: true`). */
  home: string;
  /** `trove args…` in `home` (options may add input, env, cwd). */
  run(args: string[], opts?: Partial<CliOptions>): Promise<CliResult>;
  /** `trove args…` in `home` that must exit 0; returns stdout. */
  ok(args: string[], opts?: Partial<CliOptions>): Promise<string>;
  /** A long-running `trove args…` in `home` (tail, listen). */
  start(args: string[], opts?: Partial<CliOptions>): RunningCli;
}

/** Every step spawns a node process (the CLI or the server): generous, so a busy machine does not fail the run. */
export const E2E_TEST_TIMEOUT_MS = 240_000;

/** A real server for the test file, stopped (and temp HOMEs removed) after it. */
export function useServer(options: StartOptions = {}): ServerSession {
  return register<ServerSession>(options, async () => {});
}

/** `useServer` plus a HOME logged in with `trove login` (with `-n namespace` when given). */
export function useLoggedInCli(opts: { namespace?: string; admin?: boolean; server?: StartOptions } = {}): CliSession {
  const session = register<CliSession>(opts.server ?? {}, async (s) => {
    s.home = makeHome();
    const key = opts.admin ? s.server.adminKey : s.server.runtimeKey;
    await login(s.home, s.server.baseUrl, key, opts.namespace ? ['-n', opts.namespace] : []);
  });
  session.run = (args, o = {}) => trove(args, { home: session.home, ...o });
  session.ok = (args, o = {}) => troveOk(args, { home: session.home, ...o });
  session.start = (args, o = {}) => startTrove(args, { home: session.home, ...o });
  return session;
}

function register<S extends ServerSession>(options: StartOptions, then: (session: S) => Promise<void>): S {
  vi.setConfig({ testTimeout: E2E_TEST_TIMEOUT_MS });
  const session = {} as S;
  // One hook, so the login never races the server's start.
  beforeAll(async () => {
    session.server = await startServer(options);
    await then(session);
  });
  afterAll(async () => {
    await session.server?.close();
    cleanupHomes();
  });
  return session;
}
