/**
 * `~/.trove/config.json`, shared with the Python CLI:
 * `{"profiles": {"<name>": {api_key, workspace_id, base_url, namespace}}}`.
 * Keys this CLI does not know (top-level or inside a profile) are kept as they are,
 * so both CLIs can write the file without losing each other's settings.
 */
import { promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CliError } from '../errors.js';

/** The profile name used when none is chosen. */
export const DEFAULT_PROFILE = 'default';

/** One saved login, as stored (snake_case, like the Python CLI). */
export interface StoredProfile {
  api_key: string;
  workspace_id?: string | null;
  base_url?: string | null;
  namespace?: string | null;
  [other: string]: unknown;
}

/** The whole file: `profiles` plus whatever else another tool put there. */
export interface ConfigFile {
  profiles: Record<string, StoredProfile>;
  [other: string]: unknown;
}

export function configPath(home: string): string {
  return join(home, '.trove', 'config.json');
}

/** Reads the file; a missing file is an empty config, a corrupt one is an error (never overwritten silently). */
export async function readConfig(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { profiles: {} };
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
  }
  if (text.trim() === '') return { profiles: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${path} is not valid JSON: ${(err as Error).message}`, {
      hint: `fix or remove ${path}, then run \`trove login\` again`,
    });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CliError(`${path} must hold a JSON object`, { hint: `fix or remove ${path}` });
  }
  const obj = parsed as Record<string, unknown>;
  const rawProfiles = obj.profiles;
  const profiles: Record<string, StoredProfile> = {};
  if (rawProfiles !== undefined && rawProfiles !== null) {
    if (typeof rawProfiles !== 'object' || Array.isArray(rawProfiles)) {
      throw new CliError(`${path}: "profiles" must be an object`, { hint: `fix or remove ${path}` });
    }
    // Entries without a usable key are kept in the file (isUsableProfile filters them on use).
    Object.assign(profiles, rawProfiles);
  }
  return { ...obj, profiles };
}

/**
 * Writes the file atomically (temp file in the same directory, then rename) with
 * mode 0600 in a 0700 directory: it holds API keys.
 */
export async function writeConfig(path: string, config: ConfigFile): Promise<void> {
  const dir = dirname(path);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.config.json.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fsp.open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(JSON.stringify(config, null, 2) + '\n', 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fsp.rename(tmp, path);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  // rename keeps the temp file's mode; chmod covers a umask that stripped bits at open.
  await fsp.chmod(path, 0o600);
}

/** True when `p` has the fields a login needs. */
export function isUsableProfile(p: unknown): p is StoredProfile {
  return (
    !!p &&
    typeof p === 'object' &&
    typeof (p as StoredProfile).api_key === 'string' &&
    (p as StoredProfile).api_key !== ''
  );
}
