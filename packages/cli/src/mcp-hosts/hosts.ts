/**
 * Where agent hosts keep their MCP server lists, and the entry that launches
 * `trove mcp serve`. All three use `{"mcpServers": {"<name>": {command, args, env?}}}`.
 */
import { join } from 'node:path';
import type { IO } from '../context.js';

export type HostId = 'claude-desktop' | 'cursor' | 'claude-code';

export const HOSTS: { id: HostId; label: string }[] = [
  { id: 'claude-desktop', label: 'Claude Desktop' },
  { id: 'cursor', label: 'Cursor' },
  { id: 'claude-code', label: 'Claude Code' },
];

export function hostLabel(id: HostId): string {
  return HOSTS.find((h) => h.id === id)?.label ?? id;
}

export function defaultConfigPath(
  id: HostId,
  io: Pick<IO, 'env' | 'home'>,
  platform: NodeJS.Platform = process.platform,
): string {
  switch (id) {
    case 'claude-desktop':
      if (platform === 'darwin')
        return join(io.home, 'Library', 'Application Support', 'Claude', 'claude_desktop_config.json');
      if (platform === 'win32')
        return join(io.env.APPDATA ?? join(io.home, 'AppData', 'Roaming'), 'Claude', 'claude_desktop_config.json');
      return join(io.env.XDG_CONFIG_HOME || join(io.home, '.config'), 'Claude', 'claude_desktop_config.json');
    case 'cursor':
      return join(io.home, '.cursor', 'mcp.json');
    case 'claude-code':
      // User scope: available in every project.
      return join(io.home, '.claude.json');
  }
}

/** An `mcpServers` entry. */
export interface ServerEntry {
  type?: 'stdio';
  command: string;
  args: string[];
  env?: Record<string, string>;
}

/**
 * The entry for this installation of trove: node and the CLI by absolute path (GUI hosts
 * do not see the shell's PATH), the profile by name so the key stays in ~/.trove/config.json.
 */
export function buildEntry(
  id: HostId,
  input: {
    nodePath: string;
    cliPath: string;
    profile: string | null;
    namespace: string | undefined;
    env?: Record<string, string>;
  },
): ServerEntry {
  const args = [input.cliPath, 'mcp', 'serve'];
  if (input.profile !== null) args.push('--profile', input.profile);
  if (input.namespace !== undefined) args.push('--namespace', input.namespace);
  const entry: ServerEntry = { command: input.nodePath, args };
  if (input.env && Object.keys(input.env).length > 0) entry.env = input.env;
  // Claude Code records the transport type in each entry.
  return id === 'claude-code' ? { type: 'stdio', ...entry } : entry;
}

/** Structural equality for JSON values (key order ignored). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => sameJson(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  const bk = Object.keys(bo);
  return ak.length === bk.length && ak.every((k) => k in bo && sameJson(ao[k], bo[k]));
}
