/**
 * `trove mcp serve`: the MCP server on stdio, for agent hosts to launch. stdout
 * carries only the protocol; anything for humans goes to stderr.
 */
import type { Context } from '../../context.js';
import { CLI_VERSION } from '../../version.js';

export async function run(ctx: Context): Promise<void> {
  const cfg = await ctx.config();
  const client = await ctx.client();
  const { serveStdio } = await import('trove-mcp');
  ctx.note(
    ctx.err.dim(
      `trove mcp: serving ${cfg.baseUrl}${client.namespace ? ` (namespace "${client.namespace}")` : ''} on stdio`,
    ),
  );
  await serveStdio(client, { name: 'trove', version: CLI_VERSION, signal: ctx.io.signal });
}
