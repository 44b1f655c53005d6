/**
 * The only module that reads the environment, listens, and handles signals.
 */
import pino from 'pino';
import { setFlagsFromString } from 'node:v8';
import { buildApp } from './app.js';
import { loadConfig, OPTIONS, type Config } from './config.js';
import { createContext, type AppContext } from './context.js';
import { registerSubsystems } from './subsystems.js';
import type { HardQuotaMode } from './tree/hard-quota.js';

export const HELP = `trove-server — the Trove server

Usage:
  trove-server [serve] [flags]                 start the server
  trove-server workspace create --name NAME    create a workspace and print its keys (JSON)
  trove-server --help

Every flag is also an environment variable:
${OPTIONS.map((o) => `  --${o.flag.padEnd(28)} ${o.env.padEnd(32)} ${o.help}`).join('\n')}
`;

export interface Running {
  ctx: AppContext;
  url: string;
  close(): Promise<void>;
}

function makeLogger(config: Config) {
  return pino({
    level: config.logLevel,
    redact: {
      paths: ['*.api_key', '*.admin_api_key', '*.secret', '*.signing_secret', 'authorization'],
      censor: '[redacted]',
    },
  });
}

function gib(n: number): string {
  return n >= 1024 ** 3 ? `${+(n / 1024 ** 3).toFixed(1)} GiB` : `${+(n / 1024 ** 2).toFixed(1)} MiB`;
}

/** What a tenant may store: the per-namespace quota and the free-space reserve, printed at every start. */
function storageLine(config: Config, s: { freeBytes: number; reserveBytes: number }, hard: HardQuotaMode): string {
  const { quotaBytes, quotaFiles } = config.files;
  const enforced = hard.kind === 'btrfs' ? ', hard (btrfs qgroups)' : `, measured (${hard.reason})`;
  const quota = quotaBytes > 0 ? `${gib(quotaBytes)} per namespace` : 'unlimited per namespace';
  const files = quotaFiles > 0 ? `, ${quotaFiles} files` : '';
  return `Storage: quota ${quota}${files} (--quota-bytes)${quotaBytes > 0 ? enforced : ''}; ${gib(s.freeBytes)} free, ${gib(s.reserveBytes)} kept in reserve (--min-free-bytes)`;
}

/** Starts a server; prints bootstrap keys on first start, then the listening line. */
export async function serve(
  config: Config,
  out: (line: string) => void = (l) => process.stdout.write(l + '\n'),
): Promise<Running> {
  const logger = makeLogger(config);
  const ctx = await createContext(config, logger);
  await registerSubsystems(ctx);
  // Cluster nodes may start together: check-and-create under one cluster-wide lock.
  const bootstrap = await ctx.locks.exclusive('', '.bootstrap', async () =>
    (await ctx.workspaces.count()) === 0
      ? ctx.workspaces.create('default', { adminKey: config.bootstrapAdminKey, runtimeKey: config.bootstrapRuntimeKey })
      : null,
  );
  const sandbox = await ctx.sandbox.init();
  const app = await buildApp(config, ctx);
  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const hostForUrl = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${hostForUrl === '0.0.0.0' ? '127.0.0.1' : hostForUrl}:${port}`;
  const publicUrl = config.publicUrl ?? url;
  for (const fn of ctx.onStart) await fn();

  if (bootstrap) {
    out('');
    out(`Created workspace ${bootstrap.workspace_id}. These keys are shown once — store them now:`);
    out(`  admin key (manages keys and webhooks): ${bootstrap.admin_api_key}`);
    out(`  workspace key (files, exec, snapshots): ${bootstrap.api_key}`);
    out('Log in with the CLI:');
    out(`  trove login --api-key ${bootstrap.api_key} --base-url ${publicUrl}`);
    out(`  trove login --api-key ${bootstrap.admin_api_key} --base-url ${publicUrl} --save-as admin`);
    out('');
  }
  if (!sandbox.available && sandbox.mode === 'unavailable') {
    out(
      `warning: exec is disabled: ${sandbox.reason ?? 'sandbox unavailable'}${sandbox.fix ? ` — fix: ${sandbox.fix}` : ''}`,
    );
  }
  out(storageLine(config, ctx.files.quota.storage.status(), ctx.namespaces.trees.hardQuotaMode));
  out(`Trove listening on ${url}`);

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      // Requests in flight get a grace period to finish; then their connections are cut.
      const cut = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      try {
        await app.close();
      } finally {
        clearTimeout(cut);
      }
      await ctx.close();
    })());
  return { ctx, url, close };
}

/**
 * The V8 flag for TROVE_HEAP_GROWTH_PERCENT, or null for V8's own heuristic. V8 reads it each time it sets the
 * next full collection's threshold, so setting it once the process runs takes effect from the next collection;
 * the flag is the process's, which is why only main() (the server's own process) sets it, never serve().
 */
export function heapGrowthFlag(config: Pick<Config, 'heapGrowthPercent'>): string | null {
  return config.heapGrowthPercent > 0 ? `--heap-growing-percent=${config.heapGrowthPercent}` : null;
}

/** How long a SIGTERM waits for requests in flight (uploads, execs) before cutting them. */
const SHUTDOWN_GRACE_MS = 10_000;

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const args = [...argv];
  if (args.includes('--help') || args.includes('-h') || args[0] === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (args[0] === 'workspace') {
    if (args[1] !== 'create') {
      process.stderr.write('usage: trove-server workspace create --name NAME [flags]\n');
      return 2;
    }
    const rest = args.slice(2);
    const i = rest.findIndex((a) => a === '--name' || a.startsWith('--name='));
    if (i === -1) {
      process.stderr.write('error: --name is required\n');
      return 2;
    }
    const name = rest[i]!.includes('=') ? rest[i]!.split('=').slice(1).join('=') : rest[i + 1];
    rest.splice(i, rest[i]!.includes('=') ? 1 : 2);
    if (!name) {
      process.stderr.write('error: --name needs a value\n');
      return 2;
    }
    const config = loadConfig(env, rest);
    const ctx = await createContext({ ...config, logLevel: 'warn' }, makeLogger({ ...config, logLevel: 'warn' }));
    try {
      const ws = await ctx.workspaces.create(name);
      process.stdout.write(JSON.stringify(ws, null, 2) + '\n');
    } finally {
      await ctx.close();
    }
    return 0;
  }
  if (args[0] === 'serve') args.shift();
  const config = loadConfig(env, args);
  const heapFlag = heapGrowthFlag(config);
  if (heapFlag) setFlagsFromString(heapFlag);
  const running = await serve(config);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      running.ctx.logger.info({ signal }, 'shutting down');
      // A second signal, or a stuck close, must not leave the process hanging.
      const force = setTimeout(() => process.exit(1), 15_000);
      force.unref();
      running.close().then(resolve, (err) => {
        running.ctx.logger.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
