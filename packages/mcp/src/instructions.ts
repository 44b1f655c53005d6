/** The server instructions and the `trove_orient` prompt text. */

export function serverInstructions(namespace: string | undefined): string {
  const where = namespace ? ` (namespace "${namespace}")` : '';
  return [
    `Trove gives you a persistent POSIX filesystem${where} that outlives this conversation.`,
    'Call trove_bootstrap first: it summarises the files, the init script and the notes that earlier sessions left for you.',
    'trove_exec runs `sh -c <command>` in a directory that contains `workspace/`; only files under `workspace/` persist between calls ' +
      '(tools such as jq, grep, sed, python3 are available). The other tools take paths relative to `workspace/` ' +
      '(`notes/a.md` and `workspace/notes/a.md` are the same file).',
    'Keep handoff notes in workspace/.trove/agent.md: what you did, what is left, where things are. ' +
      'Update them before you finish, so the next session can pick up where you stopped.',
    'Commands that take longer than trove_exec allows (30 s by default), servers and watchers go to trove_process_start; ' +
      'read their output with trove_process_output (pass back the offsets it returns) and stop them with trove_process_kill.',
    'Take a trove_snapshot before a risky change; trove_restore rolls the namespace back to it.',
  ].join('\n');
}

export const ORIENT_PREAMBLE =
  'Orient yourself in your Trove workspace before doing anything else. Below is its current state. ' +
  'Read the notes (if any), check the files that matter for the task, and keep workspace/.trove/agent.md ' +
  'up to date with what you did and what is left.';
