/** `trove completion bash|zsh|fish`: prints the script for the shell. */
import type { Command } from 'commander';
import type { Context } from '../../context.js';
import { bashScript, fishScript, zshScript } from './generate.js';

export async function run(ctx: Context, [shell]: [string], _opts: unknown, command: Command): Promise<void> {
  let root = command;
  while (root.parent) root = root.parent;
  const script = shell === 'bash' ? bashScript(root) : shell === 'zsh' ? zshScript(root) : fishScript(root);
  if (ctx.json) ctx.printJson({ shell, script });
  else ctx.io.stdout.write(script);
}
