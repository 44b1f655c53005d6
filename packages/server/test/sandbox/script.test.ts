import { describe, expect, it } from 'vitest';
import { buildScript, INIT_SCRIPT } from '../../src/sandbox/script.js';

const limits = { cpuSeconds: 60, maxFileBytes: 1024 ** 3, maxOpenFiles: 1024, maxProcs: 128, dataBytes: 1024 ** 3 };

describe('buildScript', () => {
  it('sets hard limits, signals readiness, sources init.sh, then runs the command verbatim', () => {
    const s = buildScript('echo "$1" && ls', limits, true);
    const [first, second, ...rest] = s.split('\n');
    expect(first).toBe(
      'ulimit -c 0 && ulimit -S -t 60 && ulimit -H -t 61 && ulimit -f 2097152 && ulimit -n 1024 && ' +
        '{ ulimit -p 128 2>/dev/null || ulimit -u 128; } && ulimit -d 1048576 || exit 125; umask 022; printf . >&6; exec 6>&-',
    );
    expect(second).toBe(`if [ -f ${INIT_SCRIPT} ]; then . ./${INIT_SCRIPT}; fi`);
    expect(rest.join('\n')).toBe('echo "$1" && ls');
  });

  it('skips init.sh when asked and leaves out limits set to 0', () => {
    const s = buildScript(
      'true',
      { cpuSeconds: 0, maxFileBytes: 0, maxOpenFiles: 0, maxProcs: 0, dataBytes: 0 },
      false,
    );
    expect(s).toBe('ulimit -c 0 || exit 125; umask 022; printf . >&6; exec 6>&-\ntrue');
  });

  it('sources a command file instead of inlining a command too long for argv', () => {
    const s = buildScript('ignored', limits, true, '/run/trove/command.sh');
    expect(s.split('\n').at(-1)).toBe('. /run/trove/command.sh');
    expect(s).not.toContain('ignored');
  });

  it('keeps a multi-line command intact after the prelude', () => {
    const cmd = 'cat <<EOF\nline1\nEOF\necho done';
    expect(buildScript(cmd, limits, false).endsWith('\n' + cmd)).toBe(true);
  });
});
