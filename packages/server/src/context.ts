/**
 * Wires the services together from a Config: the store, the event log, keys,
 * namespaces, files, exec, and the optional subsystems (webhooks, snapshots)
 * that register themselves through `extraRoutes` / `onStart` / `onClose`.
 */
import { constants as fsConstants, readFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { openStore, type Store } from './db/index.js';
import type { EventBus } from './events/bus.js';
import { EventService } from './events/service.js';
import { AuthService } from './auth/service.js';
import { WorkspaceService } from './workspaces/service.js';
import { NamespaceService } from './namespaces/service.js';
import { FileService } from './files/service.js';
import { NamespaceQuota } from './files/quota.js';
import { StorageGuard } from './tree/storage.js';
import type { NamespaceLocks } from './locks/namespace-locks.js';
import { createCoordination } from './locks/coordination.js';
import { SandboxRunner, type SandboxStatus } from './sandbox/runner.js';
import { ExecService } from './exec/service.js';

export interface Logger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  debug?(obj: object | string, msg?: string): void;
}

export type RoutePlugin = (app: FastifyInstance, deps: AppContext) => Promise<void>;

export interface AppContext {
  config: Config;
  version: string;
  logger: Logger;
  store: Store;
  bus: EventBus;
  events: EventService;
  auth: AuthService;
  workspaces: WorkspaceService;
  namespaces: NamespaceService;
  files: FileService;
  locks: NamespaceLocks;
  /** The namespaces' sandboxes: one-shot commands and background processes run in them. */
  sandbox: SandboxRunner;
  /** One-shot exec: quota, lock, sandbox, exec.completed. */
  exec: ExecService;
  /** Routes of optional subsystems (webhooks, snapshots, dashboard, mcp). */
  extraRoutes: RoutePlugin[];
  /** Cleanup run when a namespace is deleted (snapshots etc.), before the tree goes. */
  namespaceDeleteHooks: Array<(workspaceId: string, namespace: string) => Promise<void>>;
  /** Background workers started after listen and stopped on close. */
  onStart: Array<() => Promise<void>>;
  onClose: Array<() => Promise<void>>;
  deleteNamespace(workspaceId: string, namespace: string): Promise<void>;
  /** Database, data volume and exec sandbox status; writes nothing (see HealthReport). */
  health(): Promise<HealthReport>;
  close(): Promise<void>;
}

/** What /healthz answers up/down from, and what /v1/admin/health shows an admin. */
export interface HealthReport {
  ok: boolean;
  /** `ok`, or the kind of failure (`unreachable: ECONNREFUSED`), never where the database lives. */
  database: string;
  /** `ok`, `unwritable: EROFS` (or another errno), `unreachable: ETIMEDOUT`. */
  volume: string;
  exec: SandboxStatus;
  /** The data volume's space for unprivileged writers; null when it could not be read. */
  disk: { free_bytes: number; total_bytes: number } | null;
}

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return '0.0.0';
  }
}

export async function createContext(config: Config, logger: Logger): Promise<AppContext> {
  await fsp.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  // Security: the data dir holds the database and every tree; nobody else may traverse it.
  await fsp.chmod(config.dataDir, 0o700);
  const store = await openStore({
    dataDir: config.dataDir,
    databaseUrl: config.databaseUrl,
    log: logger,
    sqliteSynchronous: config.sqliteSynchronous,
  });
  const coordination = await createCoordination(store, logger);
  const bus: EventBus = coordination.bus;
  const events = new EventService(store.db, bus, store.sqliteSync);
  coordination.attach(events);
  const auth = new AuthService(store.db, events, store.sqliteSync);
  const workspaces = new WorkspaceService(store.db, events, auth);
  const isRoot = process.getuid?.() === 0;
  const namespaces = new NamespaceService(
    store.db,
    config.dataDir,
    {
      uid: config.exec.uid,
      gid: config.exec.gid,
      enabled: isRoot && config.exec.uid !== 0,
    },
    config.files.quotaBytes,
  );
  // Sweeps upload temp files a crash left, and holds the scratch directory open.
  await namespaces.trees.start();
  const locks = coordination.locks;
  const quota = new NamespaceQuota(
    namespaces,
    config.files,
    new StorageGuard(config.dataDir, config.files.minFreeBytes),
  );
  quota.startWatching();
  const files = new FileService(namespaces, events, locks, config.files, quota);
  const sandbox = new SandboxRunner(config.exec, logger);
  const exec = new ExecService({ sandbox, files, namespaces, locks, events, timeoutMs: config.exec.timeoutMs });

  let volumeCheck: Promise<NonNullable<HealthReport['disk']>> | null = null;
  const ctx: AppContext = {
    config,
    version: packageVersion(),
    logger,
    store,
    bus,
    events,
    auth,
    workspaces,
    namespaces,
    files,
    locks,
    sandbox,
    exec,
    extraRoutes: [],
    namespaceDeleteHooks: [],
    onStart: [],
    onClose: [],
    async deleteNamespace(workspaceId, namespace) {
      await locks.exclusive(workspaceId, namespace, async () => {
        for (const hook of ctx.namespaceDeleteHooks) await hook(workspaceId, namespace);
        await namespaces.remove(workspaceId, namespace);
        await events.emit({ workspaceId, namespace, type: 'namespace.deleted', data: { namespace } });
      });
    },
    async health() {
      let database = 'ok';
      let volume = 'ok';
      let disk: HealthReport['disk'] = null;
      // Nothing is written: load balancers call this every few seconds. access(W_OK) fails with EROFS on a
      // read-only (re)mount and ENOENT/EACCES when the data dir went away; statfs gives the free space.
      // A check still running (a hung network volume) is shared, so probes cannot pile up on the thread pool.
      volumeCheck ??= (async () => {
        await fsp.access(config.dataDir, fsConstants.W_OK);
        const st = await fsp.statfs(config.dataDir);
        return { free_bytes: st.bavail * st.bsize, total_bytes: st.blocks * st.bsize };
      })().finally(() => (volumeCheck = null));
      await Promise.all([
        withTimeout(store.ping(), HEALTH_TIMEOUT_MS).catch((err: unknown) => {
          // Say what kind of failure, not where the database lives. The log has the rest.
          database = `unreachable: ${(err as NodeJS.ErrnoException).code ?? 'error'}`;
          logger.warn({ err: (err as Error).message }, 'health check: database unreachable');
        }),
        withTimeout(volumeCheck, HEALTH_TIMEOUT_MS).then(
          (d) => void (disk = d),
          (err: unknown) => {
            const code = (err as NodeJS.ErrnoException).code ?? 'error';
            volume = code === 'ETIMEDOUT' ? 'unreachable: ETIMEDOUT' : `unwritable: ${code}`;
            logger.warn({ err: (err as Error).message }, 'health check: data volume unusable');
          },
        ),
      ]);
      return { ok: database === 'ok' && volume === 'ok', database, volume, exec: sandbox.status(), disk };
    },
    async close() {
      for (const fn of ctx.onClose.reverse()) await fn().catch((err) => logger.error({ err }, 'shutdown step failed'));
      await sandbox.close();
      files.quota.stopWatching();
      await namespaces.trees.close().catch((err: unknown) => logger.warn({ err }, 'scratch directory cleanup failed'));
      await bus.close();
      await store.close();
    },
  };
  return ctx;
}

/** A load balancer's health probe must get an answer quickly, even while the database or a network volume hangs. */
const HEALTH_TIMEOUT_MS = 2_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
