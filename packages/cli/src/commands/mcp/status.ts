/** `trove mcp status [--client X]`: whether each host has the trove entry, and whether it is current. */
import type { Context } from '../../context.js';
import { readHostConfig, servers } from '../../mcp-hosts/config-file.js';
import { desiredEntry } from '../../mcp-hosts/desired.js';
import { HOSTS, defaultConfigPath, sameJson, type HostId } from '../../mcp-hosts/hosts.js';

export async function run(
  ctx: Context,
  _args: unknown[],
  opts: { client?: HostId; configPath?: string; name: string },
): Promise<void> {
  const ids = opts.client ? [opts.client] : HOSTS.map((h) => h.id);
  const rows = [];
  for (const id of ids) {
    const path = (opts.client && opts.configPath) || defaultConfigPath(id, ctx.io);
    let installed = false;
    let current: boolean | null = null;
    let error: string | null = null;
    let entry: unknown = null;
    try {
      const cfg = await readHostConfig(path);
      entry = servers(cfg.doc)[opts.name] ?? null;
      installed = entry !== null;
      if (installed) {
        // Without credentials there is nothing to compare against.
        current = await desiredEntry(ctx, id).then(
          (d) => sameJson(entry, d.entry),
          () => null,
        );
      }
    } catch (err) {
      error = (err as Error).message;
    }
    rows.push({ client: id, configPath: path, installed, current, entry, error });
  }
  if (ctx.json) {
    ctx.printJson({ clients: rows });
    return;
  }
  const c = ctx.out;
  ctx.printTable(
    ['CLIENT', 'STATUS', 'CONFIG'],
    rows.map((r) => [
      r.client,
      r.error
        ? c.red('unreadable')
        : !r.installed
          ? 'not installed'
          : r.current === false
            ? c.yellow('installed (outdated: run install)')
            : c.green('installed'),
      r.configPath,
    ]),
  );
}
