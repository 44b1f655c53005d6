/** `trove completion`: scripts generated from the command tree; the bash one is exercised in a real bash. */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHomes, makeHome, trove, troveOk } from './helpers/cli.js';

// Every step spawns the CLI (a fresh node process); generous, so a busy machine does not fail the run.
vi.setConfig({ testTimeout: 240_000 });

afterAll(() => cleanupHomes());

const has = (shell: string) => spawnSync(shell, ['-c', 'true']).status === 0;

/** Asks the generated bash function what it offers for the words typed so far. */
function bashComplete(script: string, words: string[]): string[] {
  const dir = makeHome();
  const file = join(dir, 'trove.bash');
  writeFileSync(file, script);
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const out = execFileSync(
    'bash',
    [
      '-c',
      `source ${file}; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _trove; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: 'utf8' },
  );
  return out.split('\n').filter(Boolean);
}

describe('completion', () => {
  it('bash: completes commands, subcommands, options and choices', async () => {
    const home = makeHome();
    const script = await troveOk(['completion', 'bash'], { home });
    execFileSync('bash', ['-n'], { input: script });
    expect(bashComplete(script, ['trove', ''])).toEqual(
      expect.arrayContaining(['login', 'run', 'put', 'snapshot', 'webhooks', 'mcp']),
    );
    expect(bashComplete(script, ['trove', 'we'])).toEqual(['webhooks']);
    expect(bashComplete(script, ['trove', 'webhooks', '']).filter((w) => !w.startsWith('-'))).toEqual([
      'list',
      'create',
      'delete',
      'test',
      'deliveries',
      'listen',
    ]);
    expect(bashComplete(script, ['trove', 'webhooks', 'listen', '--f'])).toEqual(['--forward-to']);
    expect(bashComplete(script, ['trove', 'snapshots', 'restore', 'snap-1', '-'])).toEqual(
      expect.arrayContaining(['-y', '--yes', '--json']),
    );
    expect(bashComplete(script, ['trove', 'mcp', 'install', '--client', 'c'])).toEqual([
      'claude-desktop',
      'cursor',
      'claude-code',
    ]);
    expect(bashComplete(script, ['trove', 'completion', '']).slice(0, 3)).toEqual(['bash', 'zsh', 'fish']);
  });

  it('zsh and fish: cover every command', async () => {
    const home = makeHome();
    const zsh = await troveOk(['completion', 'zsh'], { home });
    expect(zsh.startsWith('#compdef trove')).toBe(true);
    expect(zsh).toContain("'webhooks:webhook endpoints (admin key)'");
    expect(zsh).toContain("('webhooks listen')\n");
    const fish = await troveOk(['completion', 'fish'], { home });
    expect(fish).toContain("complete -c trove -n '__fish_use_subcommand' -a 'tail'");
    expect(fish).toContain('-l forward-to -r');
    expect(fish).toContain("-l client -x -a 'claude-desktop cursor claude-code'");
  });

  it.skipIf(!has('zsh'))('zsh: the script parses and completes in a real zsh', async () => {
    const home = makeHome();
    const file = join(home, '_trove');
    writeFileSync(file, await troveOk(['completion', 'zsh'], { home }));
    execFileSync('zsh', ['-n', file]);
    // compdef/_describe/_files stand in for the completion system so the function's choices can be read.
    const complete = (words: string[]) =>
      execFileSync(
        'zsh',
        [
          '-c',
          `compdef() { :; }; source ${file}; _describe() { shift 3; print -rl -- "\${(@P)1}"; }; _files() { print -r FILES; }; ` +
            `words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; _trove`,
        ],
        { encoding: 'utf8' },
      )
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/(?<!\\):/)[0]);
    expect(complete(['trove', 'snapshot', ''])).toEqual(['create', 'list', 'restore', 'delete', 'export', 'import']);
    expect(complete(['trove', 'webhooks', 'listen', '--f'])).toContain('--forward-to');
    expect(complete(['trove', 'put', 'local.txt', ''])).toEqual(['FILES']);
  });

  it.skipIf(!has('fish'))('fish: the script parses and completes in a real fish', async () => {
    const home = makeHome();
    const file = join(home, 'trove.fish');
    writeFileSync(file, await troveOk(['completion', 'fish'], { home }));
    execFileSync('fish', ['-n', file]);
    const complete = (line: string) =>
      execFileSync('fish', ['-c', `source ${file}; complete -C '${line}'`], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[0]);
    expect(complete('trove snapshot ').sort()).toEqual(['create', 'delete', 'export', 'import', 'list', 'restore']);
    expect(complete('trove webhooks listen --f')).toEqual(['--forward-to']);
    expect(complete('trove mcp install --client ').sort()).toEqual(['claude-code', 'claude-desktop', 'cursor']);
  });

  it('an unknown shell is a usage error', async () => {
    const r = await trove(['completion', 'powershell'], { home: makeHome() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("'powershell' is invalid");
    expect(r.stderr).toContain('bash, zsh, fish');
  });
});
