/** `trove mcp uninstall --client X`: removes the trove entry, keeping everything else. */
import type { Context } from '../../context.js';
import { editServers, type HostEditOptions } from '../../mcp-hosts/config-file.js';
import { hostLabel } from '../../mcp-hosts/hosts.js';

export async function run(ctx: Context, _args: unknown[], opts: HostEditOptions): Promise<void> {
  let present = false;
  const { path, changed, backup } = await editServers(ctx.io, opts, (current) => {
    present = opts.name in current;
    if (!present) return null;
    const rest = { ...current };
    delete rest[opts.name];
    return rest;
  });
  if (ctx.json) {
    ctx.printJson({
      client: opts.client,
      configPath: path,
      name: opts.name,
      action: present ? 'remove' : 'none',
      changed,
      dryRun: opts.dryRun === true,
      backup,
    });
    return;
  }
  const label = hostLabel(opts.client);
  if (!present) ctx.note(`"${opts.name}" is not installed in ${label} (${path}); nothing changed.`);
  else if (opts.dryRun) ctx.note(`Would remove "${opts.name}" from ${path}.`);
  else {
    ctx.note(`${ctx.err.green('✓')} Removed "${opts.name}" from ${label} (${path})`);
    if (backup) ctx.note(`  Backup of the previous file: ${backup}`);
  }
}
