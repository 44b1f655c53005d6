/** `trove logout`: removes a saved profile from ~/.trove/config.json. */
import type { Context } from '../../context.js';
import { NoProfileError } from '../../errors.js';
import { selectedProfileName } from '../../config/resolve.js';
import { writeConfig } from '../../config/profiles.js';

export async function run(ctx: Context): Promise<void> {
  const name = selectedProfileName(ctx.opts, ctx.io.env);
  const file = await ctx.configFile();
  if (!(name in file.profiles)) {
    throw new NoProfileError(
      `no profile named "${name}" in ${ctx.configPath}`,
      'nothing to log out of; `trove whoami` shows what is in use',
    );
  }
  delete file.profiles[name];
  await writeConfig(ctx.configPath, file);
  if (ctx.json) {
    ctx.printJson({ profile: name, removed: true, configPath: ctx.configPath });
    return;
  }
  ctx.note(`Logged out: removed profile "${name}" from ${ctx.configPath}`);
  if (ctx.io.env.TROVE_API_KEY)
    ctx.note(ctx.err.dim('TROVE_API_KEY is still set in the environment and is used when no --profile is given.'));
}
