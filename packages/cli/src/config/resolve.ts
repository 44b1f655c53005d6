/**
 * Which key, server, workspace and namespace a command uses. Precedence:
 * flags, then the environment (only when no --profile is given), then the profile file.
 */
import { NoProfileError } from '../errors.js';
import { DEFAULT_PROFILE, isUsableProfile, type ConfigFile } from './profiles.js';

/** Where `trove` connects when nothing says otherwise (a local `trove-server`); the SDK's default too. */
export const DEFAULT_BASE_URL = 'http://127.0.0.1:8080';

/** Flags every command accepts. */
export interface GlobalOptions {
  json?: boolean;
  debug?: boolean;
  profile?: string;
  namespace?: string;
  baseUrl?: string;
}

/** The settings a command runs with, and where they came from. */
export interface ResolvedConfig {
  source: 'profile' | 'env';
  /** The profile name when `source` is `profile`. */
  profile: string | null;
  apiKey: string;
  workspaceId: string | null;
  baseUrl: string;
  /** The namespace runtime calls send (`null`: none; a namespace-locked key then uses its own). */
  namespace: string | null;
  /** The profile file consulted. */
  configPath: string;
}

type Env = Record<string, string | undefined>;

function envValue(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** The profile name a command uses when it reads or writes a profile: --profile, TROVE_PROFILE, `default`. */
export function selectedProfileName(opts: GlobalOptions, env: Env): string {
  return opts.profile ?? envValue(env, 'TROVE_PROFILE') ?? DEFAULT_PROFILE;
}

export function resolveConfig(input: {
  opts: GlobalOptions;
  env: Env;
  file: ConfigFile;
  configPath: string;
}): ResolvedConfig {
  const { opts, env, file, configPath } = input;
  const envKey = envValue(env, 'TROVE_API_KEY');

  if (opts.profile === undefined && envKey !== undefined) {
    return {
      source: 'env',
      profile: null,
      apiKey: envKey,
      workspaceId: envValue(env, 'TROVE_WORKSPACE_ID') ?? null,
      baseUrl: stripSlash(opts.baseUrl ?? envValue(env, 'TROVE_BASE_URL') ?? DEFAULT_BASE_URL),
      namespace: opts.namespace ?? envValue(env, 'TROVE_NAMESPACE') ?? null,
      configPath,
    };
  }

  const name = selectedProfileName(opts, env);
  const stored = file.profiles[name];
  if (!isUsableProfile(stored)) {
    const others = Object.keys(file.profiles).filter((n) => n !== name && isUsableProfile(file.profiles[n]));
    const explicit = opts.profile !== undefined || envValue(env, 'TROVE_PROFILE') !== undefined;
    if (!explicit && others.length === 0) throw new NoProfileError('not logged in');
    throw new NoProfileError(
      `no profile named "${name}" in ${configPath}`,
      others.length > 0
        ? `saved profiles: ${others.join(', ')} (pick one with --profile NAME), or run \`trove login --api-key … --save-as ${name}\``
        : `run \`trove login --api-key trove-sk-… --save-as ${name}\``,
    );
  }
  return {
    source: 'profile',
    profile: name,
    apiKey: stored.api_key,
    workspaceId: nonEmpty(stored.workspace_id),
    baseUrl: stripSlash(opts.baseUrl ?? nonEmpty(stored.base_url) ?? DEFAULT_BASE_URL),
    namespace: opts.namespace ?? nonEmpty(stored.namespace),
    configPath,
  };
}

function nonEmpty(v: unknown): string | null {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : null;
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
