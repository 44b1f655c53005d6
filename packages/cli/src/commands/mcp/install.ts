/** `trove mcp install --client X`: adds (or updates) the trove entry in the host's config. */
import type { Context } from '../../context.js';
import { editServers, type HostEditOptions } from '../../mcp-hosts/config-file.js';
import { desiredEntry } from '../../mcp-hosts/desired.js';
import { hostLabel, sameJson } from '../../mcp-hosts/hosts.js';

export async function run(ctx: Context, _args: unknown[], opts: HostEditOptions): Promise<void> {
  const { entry, usesEnvKey } = await desiredEntry(ctx, opts.client);
  let action: 'add' | 'update' | 'none' = 'none';
  const { path, changed, backup } = await editServers(ctx.io, opts, (current) => {
    const existing = current[opts.name];
    action = existing === undefined ? 'add' : sameJson(existing, entry) ? 'none' : 'update';
    return action === 'none' ? null : { ...current, [opts.name]: entry };
  });

  if (ctx.json) {
    ctx.printJson({
      client: opts.client,
      configPath: path,
      name: opts.name,
      action,
      changed,
      dryRun: opts.dryRun === true,
      backup,
      entry,
    });
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
  if (backup) ctx.note(`  Backup of the previous file: ${backup}`);
  if (usesEnvKey)
    ctx.warn(
      'the API key from TROVE_API_KEY was written into the file; `trove login` + reinstall keeps it in ~/.trove only',
    );
  ctx.note(`  Restart ${label} to load it.`);
}
