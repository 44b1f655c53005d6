/**
 * The whole `trove` command tree. Only commander is imported up front; each
 * action imports its module when it runs, so `trove --help` stays fast.
 */
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import type { Context, IO } from './context.js';
import { CLI_VERSION } from './version.js';

/** What a command module exports. */
export interface CommandModule {
  run(ctx: Context, args: unknown[], opts: Record<string, unknown>, command: Command): Promise<void>;
}

type Loader = () => Promise<CommandModule>;

const GLOBAL_KEYS = ['json', 'debug', 'profile', 'namespace', 'baseUrl'] as const;

/** The options every command accepts (also before the command name: `trove --json ls`). */
function common(cmd: Command, namespaceHelp = 'namespace to use (default: the profile’s or TROVE_NAMESPACE)'): Command {
  return cmd
    .option('--json', 'print JSON with every field instead of text')
    .option('-n, --namespace <ns>', namespaceHelp)
    .option('--profile <name>', 'use this saved profile (default: TROVE_PROFILE, else "default")')
    .option('--base-url <url>', 'server URL (default: the profile’s, TROVE_BASE_URL, or http://127.0.0.1:8080)')
    .option('--debug', 'show request ids and stack traces on errors');
}

/** Leaf options win over the same options given before the command name. */
function mergedOpts(cmd: Command): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let c: Command | null = cmd; c; c = c.parent) {
    for (const [k, v] of Object.entries(c.opts())) if (out[k] === undefined && v !== undefined) out[k] = v;
  }
  return out;
}

function collect(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

/** A repeatable option whose values may contain commas (`--env A=1,2`). */
function repeat(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function intArg(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number.`);
    return Number(value);
  };
}

export function buildProgram(io: IO): Command {
  const action =
    (load: Loader) =>
    async (...argv: unknown[]): Promise<void> => {
      const command = argv.pop() as Command;
      argv.pop();
      const opts = mergedOpts(command);
      const globals: Record<string, unknown> = {};
      for (const k of GLOBAL_KEYS) if (opts[k] !== undefined) globals[k] = opts[k];
      const [{ Context }, mod] = await Promise.all([import('./context.js'), load()]);
      await mod.run(new Context(io, globals), argv, opts, command);
    };

  const program = new Command('trove')
    .description('Trove: a persistent POSIX filesystem for AI agents — files, exec, events, keys, webhooks, snapshots')
    .version(CLI_VERSION, '-V, --version')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
    })
    .showHelpAfterError('hint: add --help for usage')
    .addHelpText(
      'after',
      `
Configuration: flags, then TROVE_API_KEY (+ TROVE_WORKSPACE_ID, TROVE_NAMESPACE, TROVE_BASE_URL)
when no --profile is given, then the profile in ~/.trove/config.json.
Exit codes: the remote exit code for \`run\`; 2 auth/permission; 3 not logged in; 4 network; 1 other; 130 Ctrl-C.`,
    );
  common(program);

  // --- auth ---
  common(program.command('login').description('check an API key with the server and save it as a profile'))
    .option('--api-key <key>', 'the API key (trove-sk-…); "-" reads it from stdin; asked for on a terminal')
    .option('--save-as <profile>', 'profile name to save under (default: --profile, TROVE_PROFILE or "default")')
    .action(action(() => import('./commands/auth/login.js')));
  common(program.command('logout').description('remove a saved profile (default: the active one)')).action(
    action(() => import('./commands/auth/logout.js')),
  );
  common(program.command('whoami').description('show the profile, workspace, key scope and namespace in use')).action(
    action(() => import('./commands/auth/whoami.js')),
  );
  common(
    program.command('doctor').description('check the server, the key, clock skew, latency and the exec sandbox'),
  ).action(action(() => import('./commands/auth/doctor.js')));

  // --- files and exec ---
  common(
    program
      .command('run')
      .description('run a shell command in the namespace (sh -c); exits with its exit code')
      .argument('<command...>', 'the command; quote it, or put it after --')
      .option('--no-stdin', 'do not forward piped stdin (with --background: its stdin then stays open for attach)')
      .option(
        '--stream',
        'show output as it is produced (the default when stdout is a terminal; with --json: one line per chunk)',
      )
      .option('--no-stream', 'wait for the command to end and print its output at once (the default on a pipe)')
      .option(
        '-b, --background',
        'start it as a background process and print its id (see trove ps, logs, attach, kill)',
      )
      .option('--timeout <duration>', 'with --background: its wall-clock limit, e.g. 90s, 10m, 2h (default: none)')
      .option('-e, --env <NAME=VALUE>', 'with --background: an environment variable (repeatable)', repeat)
      .passThroughOptions()
      .addHelpText(
        'after',
        '\nExamples:\n  trove run "ls -la workspace"\n  echo hi | trove run -- cat\n  trove run --background -e PORT=3000 "python3 -m http.server 3000"\n',
      ),
  ).action(action(() => import('./commands/exec/run.js')));
  common(
    program
      .command('ps')
      .description('list background processes of the namespace, newest first (running ones; -a: also ended)')
      .option('-a, --all', 'also processes that have ended (the server keeps them for a day)')
      .option('--limit <n>', 'at most this many', intArg('--limit')),
  ).action(action(() => import('./commands/process/ps.js')));
  common(
    program
      .command('logs')
      .description('print a background process’s output (stdout to stdout, stderr to stderr)')
      .argument('<process_id>', 'proc-…')
      .option('-f, --follow', 'keep showing output as it is produced, until the process ends')
      .option('--stdout', 'only stdout')
      .option('--stderr', 'only stderr'),
  ).action(action(() => import('./commands/process/logs.js')));
  common(
    program
      .command('kill')
      .description('send a signal to a background process and everything it started')
      .argument('<process_id>', 'proc-…')
      .option('-s, --signal <signal>', 'TERM, KILL, INT, HUP, QUIT, USR1, USR2, STOP, CONT (or a number)', 'TERM'),
  ).action(action(() => import('./commands/process/kill.js')));
  common(
    program
      .command('attach')
      .description('show a background process’s output from now on and send it your stdin (Ctrl-C detaches)')
      .argument('<process_id>', 'proc-…')
      .option('--no-stdin', 'do not forward stdin'),
  ).action(action(() => import('./commands/process/attach.js')));
  common(
    program
      .command('ls')
      .description('list a directory (default: the namespace root)')
      .argument('[path]', 'directory, e.g. workspace/notes or notes')
      .option('-r, --recursive', 'list the whole subtree (capped at 1,000 entries)')
      .option('-l, --long', 'size and modification time (the default on a terminal)'),
  ).action(action(() => import('./commands/files/ls.js')));
  common(
    program.command('cat').description('print a file to stdout').argument('<path>', 'file in the namespace'),
  ).action(action(() => import('./commands/files/cat.js')));
  common(
    program
      .command('get')
      .description('download a file (or a directory with -r)')
      .argument('<path>', 'file in the namespace')
      .argument('[dest]', 'local file or directory (default: the current directory; "-" for stdout)')
      .option('-r, --recursive', 'download a directory'),
  ).action(action(() => import('./commands/files/get.js')));
  common(
    program
      .command('put')
      .description('upload a file (or a directory with -r); a remote path ending in / is a directory')
      .argument('<local>', 'local file or directory; "-" reads stdin')
      .argument('[remote]', 'destination in the namespace (default: the root, same name)')
      .option('-r, --recursive', 'upload a directory'),
  ).action(action(() => import('./commands/files/put.js')));
  common(
    program
      .command('write')
      .description('write text to a file (parents are created; an existing file is replaced)')
      .argument('<path>', 'file in the namespace')
      .argument('<text>', 'the content; "-" reads stdin')
      // Text may start with a dash ("- [ ] todo"); write.ts still refuses what looks like a mistyped flag.
      .allowUnknownOption(),
  ).action(action(() => import('./commands/files/write.js')));
  common(
    program
      .command('rm')
      .description('delete files or directories (recursively)')
      .argument('<paths...>', 'paths in the namespace')
      .option('-y, --yes', 'do not ask (required without a terminal when deleting several paths)'),
  ).action(action(() => import('./commands/files/rm.js')));

  // --- events ---
  common(
    program
      .command('tail')
      .description('follow events live (long-poll: each event shows as soon as it happens)')
      .option('-t, --type <type>', 'only these types (repeatable, or comma-separated)', collect)
      .option(
        '--source <source>',
        'only events made by: exec (commands), api (the files API), write, upload (repeatable, or comma-separated)',
        collect,
      )
      .option('-v, --verbose', 'show each event’s full data')
      .option('--since <when>', 'first replay events newer than this (90s, 1h30m, 2d or an ISO time)'),
    'only events of this namespace',
  ).action(action(() => import('./commands/events/tail.js')));
  const events = program.command('events').alias('event').description('the workspace event log');
  common(
    events
      .command('list')
      .description('list recent events, newest first')
      .option('--since <when>', 'only newer events: a duration (90s, 1h30m, 2d, 1w) or an ISO time')
      .option('-t, --type <type>', 'only these types (repeatable, or comma-separated)', collect)
      .option(
        '--source <source>',
        'only events made by: exec (commands), api (the files API), write, upload (repeatable, or comma-separated)',
        collect,
      )
      .option('--limit <n>', 'at most this many events (default 20; with --all: no limit)', intArg('--limit'))
      .option('--all', 'follow pages until --since (or the first event)'),
    'only events of this namespace',
  ).action(action(() => import('./commands/events/list.js')));

  // --- keys ---
  const keys = program.command('keys').alias('key').description('API keys of the workspace (admin key)');
  common(keys.command('list').description('list active keys')).action(action(() => import('./commands/keys/list.js')));
  common(
    keys
      .command('create')
      .description('create a key; its secret is printed once')
      .argument('<name>', 'a name to recognise the key by')
      .option('--admin', 'an admin key (manages keys and webhooks) instead of a runtime key'),
    'lock the key to this namespace',
  ).action(action(() => import('./commands/keys/create.js')));
  common(
    keys
      .command('revoke')
      .description('revoke a key (effective immediately)')
      .argument('<key_id>', 'key-…')
      .option('-y, --yes', 'do not ask'),
  ).action(action(() => import('./commands/keys/revoke.js')));

  // --- webhooks ---
  const webhooks = program.command('webhooks').alias('webhook').description('webhook endpoints (admin key)');
  common(webhooks.command('list').description('list endpoints with their last delivery')).action(
    action(() => import('./commands/webhooks/list.js')),
  );
  common(
    webhooks
      .command('create')
      .description('create an endpoint; its signing secret is printed once')
      .argument('<url>', 'receiver URL')
      .option('--events <types>', 'comma-separated event types (default: * = every type)', collect)
      .option(
        '--source <source>',
        'only events made by: exec (commands), api (the files API), write, upload (repeatable, or comma-separated)',
        collect,
      )
      .option('--description <text>', 'a note about the endpoint'),
    'only events of this namespace',
  ).action(action(() => import('./commands/webhooks/create.js')));
  common(
    webhooks
      .command('delete')
      .description('delete an endpoint')
      .argument('<webhook_id>', 'wh-…')
      .option('-y, --yes', 'do not ask'),
  ).action(action(() => import('./commands/webhooks/delete.js')));
  common(
    webhooks.command('test').description('send a signed webhook.test delivery now').argument('<webhook_id>', 'wh-…'),
  ).action(action(() => import('./commands/webhooks/test.js')));
  common(
    webhooks
      .command('deliveries')
      .description('the delivery log of an endpoint, newest first')
      .argument('<webhook_id>', 'wh-…')
      .option('--limit <n>', 'at most this many', intArg('--limit')),
  ).action(action(() => import('./commands/webhooks/deliveries.js')));
  common(
    webhooks
      .command('listen')
      .description('forward live events, signed, to a local receiver (like `stripe listen`)')
      .requiredOption('--forward-to <url>', 'local URL, e.g. http://localhost:3000/webhooks')
      .option('--secret <secret>', 'signing secret to sign with (default: a new one, printed)')
      .option('-t, --type <type>', 'only these types (repeatable, or comma-separated)', collect),
    'only events of this namespace',
  ).action(action(() => import('./commands/webhooks/listen.js')));

  // --- snapshots ---
  const snapshot = program.command('snapshot').alias('snapshots').description('point-in-time copies of the namespace');
  common(
    snapshot.command('create').description('take a snapshot').option('--label <label>', 'up to 128 characters'),
  ).action(action(() => import('./commands/snapshot/create.js')));
  common(snapshot.command('list').description('list snapshots, newest first')).action(
    action(() => import('./commands/snapshot/list.js')),
  );
  common(
    snapshot
      .command('restore')
      .description('make the namespace exactly the snapshot (newer files are removed)')
      .argument('<snapshot_id>', 'snap-…')
      .option('-y, --yes', 'do not ask'),
  ).action(action(() => import('./commands/snapshot/restore.js')));
  common(
    snapshot
      .command('delete')
      .description('delete a snapshot')
      .argument('<snapshot_id>', 'snap-…')
      .option('-y, --yes', 'do not ask'),
  ).action(action(() => import('./commands/snapshot/delete.js')));
  common(
    snapshot
      .command('export')
      .description('download a snapshot as a .tar.gz (GNU tar reads it)')
      .argument('<snapshot_id>', 'snap-…')
      .option(
        '-o, --output <file>',
        'file or directory to write it to (default: ./<snapshot_id>.tar.gz; "-" for stdout)',
      ),
  ).action(action(() => import('./commands/snapshot/export.js')));
  common(
    snapshot
      .command('import')
      .description('create a snapshot from a tar (.tar.gz or .tar), validated by the server like a restore')
      .argument('<file>', 'the archive; "-" reads stdin')
      .option('--label <label>', 'up to 128 characters'),
  ).action(action(() => import('./commands/snapshot/import.js')));

  // --- shell completion ---
  common(
    program
      .command('completion')
      .description('print a shell completion script')
      .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(['bash', 'zsh', 'fish']))
      .addHelpText(
        'after',
        '\nInstall:\n  bash: trove completion bash > ~/.local/share/bash-completion/completions/trove\n  zsh:  trove completion zsh > "${fpath[1]}/_trove"\n  fish: trove completion fish > ~/.config/fish/completions/trove.fish\n',
      ),
  ).action(action(() => import('./commands/completion/print.js')));

  // --- MCP ---
  const mcp = program.command('mcp').description('Trove as an MCP server for agent hosts');
  common(mcp.command('serve').description('run the MCP server on stdio (what agent hosts launch)')).action(
    action(() => import('./commands/mcp/serve.js')),
  );
  const clientOption = () =>
    new Option('--client <client>', 'the agent host').choices(['claude-desktop', 'cursor', 'claude-code']);
  for (const [verb, description, load] of [
    [
      'install',
      'add Trove to an agent host’s MCP config (backup, merge, idempotent)',
      () => import('./commands/mcp/install.js'),
    ],
    ['uninstall', 'remove Trove from an agent host’s MCP config', () => import('./commands/mcp/uninstall.js')],
  ] as const) {
    common(
      mcp
        .command(verb)
        .description(description)
        .addOption(clientOption().makeOptionMandatory())
        .option('--dry-run', 'show what would change without writing')
        .option('--config-path <file>', 'the host’s config file (default: its usual location)')
        .option('--name <name>', 'server name in the config', 'trove'),
    ).action(action(load));
  }
  common(
    mcp
      .command('status')
      .description('show whether Trove is installed in each agent host')
      .addOption(clientOption())
      .option('--config-path <file>', 'the host’s config file (default: its usual location)')
      .option('--name <name>', 'server name in the config', 'trove'),
  ).action(action(() => import('./commands/mcp/status.js')));

  return program;
}
