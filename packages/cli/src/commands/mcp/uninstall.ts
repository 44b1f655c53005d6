/** `trove mcp uninstall --client X`: removes the trove entry, keeping everything else. */
import type { Context } from '../../context.js';
import { backup, readHostConfig, servers, writeHostConfig } from '../../mcp-hosts/config-file.js';
import { defaultConfigPath, hostLabel, type HostId } from '../../mcp-hosts/hosts.js';

export async function run(
  ctx: Context,
  _args: unknown[],
  opts: { client: HostId; dryRun?: boolean; configPath?: string; name: string },
): Promise<void> {
  const path = opts.configPath ?? defaultConfigPath(opts.client, ctx.io);
  const cfg = await readHostConfig(path);
  const present = opts.name in servers(cfg.doc);
  let backupPath: string | null = null;
  if (present && !opts.dryRun) {
    backupPath = await backup(cfg, ctx.io.now());
    const rest = { ...servers(cfg.doc) };
    delete rest[opts.name];
    await writeHostConfig(cfg, { ...cfg.doc, mcpServers: rest });
  }
  if (ctx.json) {
    ctx.printJson({ client: opts.client, configPath: path, name: opts.name, action: present ? 'remove' : 'none', changed: present && !opts.dryRun, dryRun: opts.dryRun === true, backup: backupPath });
    return;
  }
  const label = hostLabel(opts.client);
  if (!present) ctx.note(`"${opts.name}" is not installed in ${label} (${path}); nothing changed.`);
  else if (opts.dryRun) ctx.note(`Would remove "${opts.name}" from ${path}.`);
  else {
    ctx.note(`${ctx.err.green('✓')} Removed "${opts.name}" from ${label} (${path})`);
    if (backupPath) ctx.note(`  Backup of the previous file: ${backupPath}`);
  }
}
