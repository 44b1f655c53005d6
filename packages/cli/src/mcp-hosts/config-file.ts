/**
 * Reading and rewriting a host's JSON config without losing anything in it:
 * other servers and settings are kept, the old file is backed up first, and
 * the new one replaces it atomically with the same permissions.
 */
import { promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { IO } from '../context.js';
import { CliError } from '../errors.js';
import { defaultConfigPath, type HostId } from './hosts.js';

export interface HostConfig {
  path: string;
  exists: boolean;
  doc: Record<string, unknown>;
  mode: number | null;
}

export async function readHostConfig(path: string): Promise<HostConfig> {
  let text: string;
  let mode: number | null = null;
  try {
    text = await fsp.readFile(path, 'utf8');
    mode = (await fsp.stat(path)).mode & 0o777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { path, exists: false, doc: {}, mode: null };
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
  }
  if (text.trim() === '') return { path, exists: true, doc: {}, mode };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${path} is not valid JSON (${(err as Error).message}); nothing was changed`, {
      hint: 'fix the file by hand (or move it away) and run the command again',
    });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new CliError(`${path} does not hold a JSON object; nothing was changed`, { hint: 'fix the file by hand' });
  }
  const servers = (doc as Record<string, unknown>).mcpServers;
  if (servers !== undefined && (servers === null || typeof servers !== 'object' || Array.isArray(servers))) {
    throw new CliError(`${path}: "mcpServers" is not an object; nothing was changed`, { hint: 'fix the file by hand' });
  }
  return { path, exists: true, doc: doc as Record<string, unknown>, mode };
}

export function servers(doc: Record<string, unknown>): Record<string, unknown> {
  return (doc.mcpServers as Record<string, unknown> | undefined) ?? {};
}

/** Copies the current file next to itself (`<name>.bak-<timestamp>`) and returns the copy's path. */
export async function backup(cfg: HostConfig, now: Date): Promise<string | null> {
  if (!cfg.exists) return null;
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  let target = join(dirname(cfg.path), `${basename(cfg.path)}.bak-${stamp}`);
  // Two runs within a second must not overwrite the first backup.
  for (let i = 1; await exists(target); i++)
    target = join(dirname(cfg.path), `${basename(cfg.path)}.bak-${stamp}-${i}`);
  await fsp.copyFile(cfg.path, target);
  if (cfg.mode !== null) await fsp.chmod(target, cfg.mode);
  return target;
}

export async function writeHostConfig(cfg: HostConfig, doc: Record<string, unknown>): Promise<void> {
  await fsp.mkdir(dirname(cfg.path), { recursive: true });
  const tmp = join(dirname(cfg.path), `.${basename(cfg.path)}.${randomBytes(4).toString('hex')}.tmp`);
  // New files may end up holding a key in `env`, so they start private.
  await fsp.writeFile(tmp, JSON.stringify(doc, null, 2) + '\n', { mode: cfg.mode ?? 0o600, flag: 'wx' });
  try {
    await fsp.rename(tmp, cfg.path);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/** The options `mcp install` and `mcp uninstall` share (a type alias, so it fits commander's option record). */
export type HostEditOptions = {
  client: HostId;
  dryRun?: boolean;
  configPath?: string;
  /** The server name in `mcpServers`. */
  name: string;
};

/**
 * Reads the host's config and hands its `mcpServers` to `change`, which returns the new
 * servers or `null` for "nothing to do". Unless that, or a dry run, the old file is backed
 * up and the new one written.
 */
export async function editServers(
  io: Pick<IO, 'env' | 'home' | 'now'>,
  opts: HostEditOptions,
  change: (current: Record<string, unknown>) => Record<string, unknown> | null,
): Promise<{ path: string; changed: boolean; backup: string | null }> {
  const path = opts.configPath ?? defaultConfigPath(opts.client, io);
  const cfg = await readHostConfig(path);
  const next = change(servers(cfg.doc));
  if (next === null || opts.dryRun) return { path, changed: false, backup: null };
  const backupPath = await backup(cfg, io.now());
  await writeHostConfig(cfg, { ...cfg.doc, mcpServers: next });
  return { path, changed: true, backup: backupPath };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}
