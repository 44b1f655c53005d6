/** `trove mcp install --client X`: adds (or updates) the trove entry in the host's config. */
import type { Context } from '../../context.js';
import { backup, readHostConfig, servers, writeHostConfig } from '../../mcp-hosts/config-file.js';
import { desiredEntry } from '../../mcp-hosts/desired.js';
import { defaultConfigPath, hostLabel, sameJson, type HostId } from '../../mcp-hosts/hosts.js';

export async function run(
  ctx: Context,
  _args: unknown[],
  opts: { client: HostId; dryRun?: boolean; configPath?: string; name: string },
): Promise<void> {
  const path = opts.configPath ?? defaultConfigPath(opts.client, ctx.io);
  const { entry, usesEnvKey } = await desiredEntry(ctx, opts.client);
  const cfg = await readHostConfig(path);
  const current = servers(cfg.doc)[opts.name];
  const action = current === undefined ? 'add' : sameJson(current, entry) ? 'none' : 'update';
  let backupPath: string | null = null;
  if (action !== 'none' && !opts.dryRun) {
    backupPath = await backup(cfg, ctx.io.now());
    await writeHostConfig(cfg, { ...cfg.doc, mcpServers: { ...servers(cfg.doc), [opts.name]: entry } });
  }

  if (ctx.json) {
    ctx.printJson({ client: opts.client, configPath: path, name: opts.name, action, changed: action !== 'none' && !opts.dryRun, dryRun: opts.dryRun === true, backup: backupPath, entry });
    return;
  }
  const label = hostLabel(opts.client);
  if (action === 'none') {
    ctx.note(`Trove is already installed in ${label} (${path}); nothing changed.`);
    return;
  }
  if (opts.dryRun) {
    ctx.note(`Would ${action} "${opts.name}" in ${path}:`);
    ctx.print(JSON.stringify({ mcpServers: { [opts.name]: entry } }, null, 2));
    return;
  }
  ctx.note(`${ctx.err.green('✓')} ${action === 'add' ? 'Installed' : 'Updated'} "${opts.name}" in ${label} (${path})`);
  if (backupPath) ctx.note(`  Backup of the previous file: ${backupPath}`);
  if (usesEnvKey) ctx.warn('the API key from TROVE_API_KEY was written into the file; `trove login` + reinstall keeps it in ~/.trove only');
  ctx.note(`  Restart ${label} to load it.`);
}
