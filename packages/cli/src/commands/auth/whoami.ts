/** `trove whoami`: the profile, workspace, key scope and namespace in use. */
import type { Context } from '../../context.js';
import { maskKey } from '../../output/format.js';
import { identityReport } from '../../output/identity.js';

export async function run(ctx: Context): Promise<void> {
  const cfg = await ctx.config();
  const client = await ctx.admin();
  const me = await client.me({ signal: ctx.io.signal });
  const namespace = me.namespace ?? cfg.namespace;
  if (ctx.json) {
    const { profile, source, configPath, baseUrl, apiKey } = cfg;
    ctx.printJson(identityReport({ profile, source, configPath, baseUrl, me, namespace, apiKey }));
    return;
  }
  const c = ctx.out;
  const rows: [string, string][] = [
    ['Profile', cfg.source === 'env' ? 'environment (TROVE_API_KEY)' : `${cfg.profile} (${cfg.configPath})`],
    ['Server', cfg.baseUrl],
    ['Workspace', me.workspaceId],
    ['Key', `${maskKey(cfg.apiKey)}  ${c.dim(`"${me.keyName}", ${me.keyId}`)}`],
    ['Scope', me.scope === 'admin' ? 'admin (keys, webhooks, events)' : 'workspace (files, exec, snapshots, events)'],
    [
      'Namespace',
      me.namespace !== null
        ? `${me.namespace} (locked)`
        : me.scope === 'admin'
          ? 'n/a (admin key)'
          : cfg.namespace
            ? `${cfg.namespace} (key may use any)`
            : 'none set (key may use any; pass -n NAME)',
    ],
  ];
  for (const [k, v] of rows) ctx.print(`${c.bold((k + ':').padEnd(11))} ${v}`);
}
