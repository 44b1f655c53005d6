/** `trove login`: checks a key with `GET /v1/me` and saves it as a profile. */
import { TroveAdminClient } from 'trove-sdk';
import type { Context } from '../../context.js';
import { CliError, ExitCode, UsageError } from '../../errors.js';
import { DEFAULT_BASE_URL, selectedProfileName } from '../../config/resolve.js';
import { writeConfig } from '../../config/profiles.js';
import { promptSecret, readAll } from '../../input/stdin.js';
import { maskKey } from '../../output/format.js';
import { identityReport } from '../../output/identity.js';

export async function run(ctx: Context, _args: unknown[], opts: { apiKey?: string; saveAs?: string }): Promise<void> {
  const { io } = ctx;
  let key = opts.apiKey;
  if (key === '-') key = (await readAll(io.stdin)).toString('utf8').trim();
  else if (key === undefined) {
    if (io.stdin.isTTY !== true || io.stderr.isTTY !== true) {
      throw new UsageError('no API key given', {
        hint: 'pass --api-key trove-sk-… (or --api-key - to read it from stdin)',
      });
    }
    key = (await promptSecret(io, 'API key: ')).trim();
  }
  if (!key) throw new UsageError('the API key is empty', { hint: 'pass --api-key trove-sk-…' });

  const name = opts.saveAs ?? selectedProfileName(ctx.opts, io.env);
  const file = await ctx.configFile();
  const existing = file.profiles[name];
  const existingBase = existing && typeof existing.base_url === 'string' ? existing.base_url : undefined;
  const envBase = io.env.TROVE_BASE_URL?.trim() || undefined;
  const baseUrl = (ctx.opts.baseUrl ?? envBase ?? existingBase ?? DEFAULT_BASE_URL).replace(/\/+$/, '');

  const client = new TroveAdminClient({ apiKey: key, baseUrl, maxRetries: 1 });
  const me = await client.me({ signal: io.signal });
  if (me.namespace !== null && ctx.opts.namespace !== undefined && ctx.opts.namespace !== me.namespace) {
    throw new CliError(`this key is locked to namespace "${me.namespace}", not "${ctx.opts.namespace}"`, {
      exitCode: ExitCode.auth,
      hint: `drop --namespace, or pass --namespace ${me.namespace}`,
    });
  }
  const namespace = ctx.opts.namespace ?? me.namespace ?? null;

  file.profiles[name] = {
    ...(existing && typeof existing === 'object' ? existing : {}),
    api_key: key,
    workspace_id: me.workspaceId,
    base_url: baseUrl,
    namespace,
  };
  await writeConfig(ctx.configPath, file);

  if (ctx.json) {
    ctx.printJson(identityReport({ profile: name, configPath: ctx.configPath, baseUrl, me, namespace, apiKey: key }));
    return;
  }
  const c = ctx.err;
  const where = namespace ? `, namespace ${c.bold(namespace)}${me.namespace ? ', locked' : ''}` : '';
  ctx.note(
    `${c.green('✓')} Logged in to ${c.bold(me.workspaceId)} at ${baseUrl} as "${me.keyName}" (${me.scope} key${where})`,
  );
  ctx.note(`  Saved profile "${name}" in ${ctx.configPath} (key ${maskKey(key)})`);
  if (me.scope === 'workspace' && namespace === null) {
    ctx.note(`  ${c.dim('Runtime commands need a namespace: pass -n NAME, or log in again with --namespace NAME.')}`);
  }
  if (name !== 'default' && opts.saveAs !== undefined && ctx.opts.profile === undefined) {
    ctx.note(`  ${c.dim(`Use it with --profile ${name} (or TROVE_PROFILE=${name}).`)}`);
  }
}
