/**
 * What every command gets: the IO streams, the global flags, the resolved
 * configuration and the SDK clients built from it. Commands read configuration
 * only through here, so flag > environment > profile holds everywhere.
 */
import { createInterface } from 'node:readline';
import type { TroveAdminClient, TroveClient } from 'trove-sdk';
import { ConfirmationRequiredError, DeclinedError, InterruptedError } from './errors.js';
import { configPath, readConfig, type ConfigFile } from './config/profiles.js';
import { resolveConfig, type GlobalOptions, type ResolvedConfig } from './config/resolve.js';
import { colorEnabled, palette, type Palette } from './output/color.js';
import { toWire } from './output/json.js';
import { renderTable } from './output/table.js';

export type { GlobalOptions, ResolvedConfig };

/** A writable stream as the CLI uses it (process.stdout or a test double). */
export interface OutStream {
  write(chunk: string | Uint8Array, cb?: (err?: Error | null) => void): boolean;
  isTTY?: boolean;
  columns?: number;
  once?(event: 'drain', listener: () => void): unknown;
}

/** stdin as the CLI uses it. */
export type InStream = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };

/** Everything a command touches outside itself; tests pass their own. */
export interface IO {
  stdout: OutStream;
  stderr: OutStream;
  stdin: InStream;
  env: Record<string, string | undefined>;
  home: string;
  cwd: string;
  now(): Date;
  /** Aborted on Ctrl-C: long-running commands stop and bin.ts exits with 130. */
  signal: AbortSignal;
}

export class Context {
  readonly out: Palette;
  readonly err: Palette;
  #file: Promise<ConfigFile> | undefined;
  #config: Promise<ResolvedConfig> | undefined;

  constructor(
    readonly io: IO,
    readonly opts: GlobalOptions,
  ) {
    this.out = palette(colorEnabled(io.stdout, io.env));
    this.err = palette(colorEnabled(io.stderr, io.env));
  }

  get json(): boolean {
    return this.opts.json === true;
  }

  get debugEnabled(): boolean {
    return this.opts.debug === true || this.io.env.TROVE_DEBUG === '1';
  }

  /** Whether stdout is a terminal (tables and colour) or a pipe (plain rows). */
  get tty(): boolean {
    return this.io.stdout.isTTY === true;
  }

  get configPath(): string {
    return configPath(this.io.home);
  }

  /** The profile file as it is on disk (read once per command). */
  configFile(): Promise<ConfigFile> {
    return (this.#file ??= readConfig(this.configPath));
  }

  /** The settings for this command; throws `NoProfileError` (exit 3) when there are none. */
  config(): Promise<ResolvedConfig> {
    return (this.#config ??= this.configFile().then((file) =>
      resolveConfig({ opts: this.opts, env: this.io.env, file, configPath: this.configPath }),
    ));
  }

  /** A runtime client for the resolved key and namespace. */
  async client(overrides: { namespace?: string | null } = {}): Promise<TroveClient> {
    const cfg = await this.config();
    const { TroveClient } = await import('trove-sdk');
    const namespace = overrides.namespace === undefined ? cfg.namespace : overrides.namespace;
    return withoutSdkEnv(
      () =>
        new TroveClient({
          apiKey: cfg.apiKey,
          baseUrl: cfg.baseUrl,
          namespace: namespace ?? undefined,
          workspaceId: cfg.workspaceId ?? undefined,
        }),
    );
  }

  /** A management client (keys, webhooks) for the resolved key. */
  async admin(): Promise<TroveAdminClient> {
    const cfg = await this.config();
    const { TroveAdminClient } = await import('trove-sdk');
    return withoutSdkEnv(
      () =>
        new TroveAdminClient({ apiKey: cfg.apiKey, baseUrl: cfg.baseUrl, workspaceId: cfg.workspaceId ?? undefined }),
    );
  }

  /** Writes data to stdout. */
  print(text: string): void {
    this.io.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }

  /** Writes talk (confirmations, notes) to stderr. */
  note(text: string): void {
    this.io.stderr.write(text.endsWith('\n') ? text : text + '\n');
  }

  /** A warning on stderr. */
  warn(text: string): void {
    this.note(`${this.err.yellow('warning:')} ${text}`);
  }

  debug(text: string): void {
    if (this.debugEnabled) this.note(this.err.dim(`debug: ${text}`));
  }

  /** `--json` output: one value, snake_case keys, every field. */
  printJson(value: unknown): void {
    this.print(JSON.stringify(toWire(value), null, 2));
  }

  /** One JSON object on one line (streams: tail, listen). */
  printJsonLine(value: unknown): void {
    this.print(JSON.stringify(toWire(value)));
  }

  printTable(header: string[], rows: string[][]): void {
    const text = renderTable(rows, { header, tty: this.tty, palette: this.out });
    if (text) this.io.stdout.write(text);
  }

  /**
   * Asks before a destructive step. `-y` skips the question; without a terminal to
   * ask on, the command refuses instead of guessing.
   */
  async confirm(question: string, opts: { yes?: boolean; what: string }): Promise<void> {
    if (opts.yes) return;
    if (this.io.stdin.isTTY !== true || this.io.stderr.isTTY !== true) throw new ConfirmationRequiredError(opts.what);
    const answer = await this.prompt(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new DeclinedError();
  }

  /** Reads one line from the terminal. */
  prompt(question: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const rl = createInterface({
        input: this.io.stdin,
        output: this.io.stderr as NodeJS.WritableStream,
        terminal: true,
      });
      let answered = false;
      rl.question(question, (answer) => {
        answered = true;
        rl.close();
        resolve(answer);
      });
      // Ctrl-C at a prompt reaches readline, not the process: treat it like Ctrl-C anywhere else.
      rl.on('SIGINT', () => {
        answered = true;
        rl.close();
        this.note('');
        reject(new InterruptedError());
      });
      rl.on('close', () => {
        if (!answered) reject(new DeclinedError());
      });
    });
  }
}

/**
 * The SDK falls back to TROVE_NAMESPACE / TROVE_WORKSPACE_ID from the process environment
 * when an option is undefined. The CLI has already applied its own precedence (a
 * `--profile` must not pick up the environment's namespace), so those variables are
 * hidden while the client is built.
 */
function withoutSdkEnv<T>(build: () => T): T {
  const names = ['TROVE_NAMESPACE', 'TROVE_WORKSPACE_ID', 'TROVE_BASE_URL', 'TROVE_API_KEY', 'TROVE_ADMIN_API_KEY'];
  const saved = new Map<string, string>();
  for (const n of names) {
    const v = process.env[n];
    if (v !== undefined) {
      saved.set(n, v);
      delete process.env[n];
    }
  }
  try {
    return build();
  } finally {
    for (const [n, v] of saved) process.env[n] = v;
  }
}
