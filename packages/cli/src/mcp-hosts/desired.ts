/** The entry `trove mcp install` would write for the current configuration. */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Context } from '../context.js';
import { buildEntry, type HostId, type ServerEntry } from './hosts.js';

/** dist/bin.js of this installation. */
export function cliBinPath(): string {
  const p = fileURLToPath(new URL('../bin.js', import.meta.url));
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

export async function desiredEntry(ctx: Context, id: HostId): Promise<{ entry: ServerEntry; usesEnvKey: boolean }> {
  const cfg = await ctx.config();
  if (cfg.source === 'profile') {
    return {
      entry: buildEntry(id, {
        nodePath: process.execPath,
        cliPath: cliBinPath(),
        profile: cfg.profile,
        namespace: ctx.opts.namespace,
      }),
      usesEnvKey: false,
    };
  }
  // Credentials came from the environment, which a GUI host does not inherit: carry them in `env`.
  const env: Record<string, string> = { TROVE_API_KEY: cfg.apiKey, TROVE_BASE_URL: cfg.baseUrl };
  if (cfg.workspaceId) env.TROVE_WORKSPACE_ID = cfg.workspaceId;
  if (cfg.namespace) env.TROVE_NAMESPACE = cfg.namespace;
  return {
    entry: buildEntry(id, {
      nodePath: process.execPath,
      cliPath: cliBinPath(),
      profile: null,
      namespace: undefined,
      env,
    }),
    usesEnvKey: true,
  };
}
