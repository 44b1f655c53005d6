/**
 * The CLI in-process with a test IO: terminal vs pipe output (tables, colour,
 * NO_COLOR, progress), confirmation prompts, argument errors, and exit codes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../src/bin.js';
import { makeHome } from './helpers/cli.js';
import { useServer } from './helpers/session.js';
import { testIO } from './helpers/test-io.js';

const session = useServer();
let env: Record<string, string>;

beforeAll(async () => {
  env = { TROVE_API_KEY: session.server.runtimeKey, TROVE_BASE_URL: session.server.baseUrl, TROVE_NAMESPACE: 'io' };
  const t = testIO({ home: makeHome(), env });
  expect(await main(['write', 'dir/one.txt', '1'], t.io)).toBe(0);
  expect(await main(['write', 'two.txt', '22'], t.io)).toBe(0);
});

const ESC = '\x1b[';

describe('terminal vs pipe', () => {
  it('ls: a coloured table on a terminal, bare names on a pipe, no colour with NO_COLOR', async () => {
    const tty = testIO({ home: makeHome(), env, tty: true });
    expect(await main(['ls'], tty.io)).toBe(0);
    const lines = tty.stdout.text.split('\n');
    // Columns are as wide as their widest visible cell ("two.txt"), colour codes not counted.
    expect(lines[0]).toBe(`${ESC}1mNAME${ESC}22m     ${ESC}1mSIZE${ESC}22m  ${ESC}1mMODIFIED${ESC}22m`);
    expect(lines[1]).toContain(`${ESC}34mdir/${ESC}39m`);
    expect(lines[2]).toMatch(/^two\.txt +2 B +\d\d:\d\d:\d\d$/);

    const noColor = testIO({ home: makeHome(), env: { ...env, NO_COLOR: '1' }, tty: true });
    expect(await main(['ls'], noColor.io)).toBe(0);
    expect(noColor.stdout.text).not.toContain(ESC);
    expect(noColor.stdout.text.split('\n')[0]).toBe('NAME     SIZE  MODIFIED');

    const pipe = testIO({ home: makeHome(), env });
    expect(await main(['ls'], pipe.io)).toBe(0);
    expect(pipe.stdout.text).toBe('dir/\ntwo.txt\n');
    expect(pipe.stderr.text).toBe('');
  });

  it('put shows a progress bar on a terminal only', async () => {
    const home = makeHome();
    writeFileSync(join(home, 'big.bin'), Buffer.alloc(2 * 1024 * 1024, 7));
    const tty = testIO({ home, env, tty: true });
    expect(await main(['put', 'big.bin'], tty.io)).toBe(0);
    expect(tty.stderr.text).toMatch(/\r\x1b\[2Kbig\.bin \[#+ *\] +\d+% /);
    expect(tty.stderr.text).toContain('100%');
    const pipe = testIO({ home, env });
    expect(await main(['put', 'big.bin', 'copy.bin'], pipe.io)).toBe(0);
    expect(pipe.stderr.text).toBe('Uploaded big.bin → workspace/copy.bin (2.0 MiB)\n');
  });
});

describe('confirmation prompts', () => {
  it('a terminal is asked; "y" proceeds, anything else cancels', async () => {
    const setup = testIO({ home: makeHome(), env });
    await main(['write', 'c/1.txt', '1'], setup.io);
    await main(['write', 'c/2.txt', '2'], setup.io);

    const no = testIO({ home: makeHome(), env, tty: true, stdin: 'n\n' });
    expect(await main(['rm', 'c/1.txt', 'c/2.txt'], no.io)).toBe(1);
    expect(no.stderr.text).toContain('Delete 2 paths in namespace "io" (c/1.txt, c/2.txt)');
    expect(no.stderr.text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')).toContain('error: cancelled');

    const yes = testIO({ home: makeHome(), env, tty: true, stdin: 'y\n' });
    expect(await main(['rm', 'c/1.txt', 'c/2.txt'], yes.io)).toBe(0);
    expect(yes.stderr.text).toContain('Deleted workspace/c/2.txt');

    const pipe = testIO({ home: makeHome(), env });
    expect(await main(['rm', 'a', 'b'], pipe.io)).toBe(1);
    expect(pipe.stderr.text).toBe(
      'error: refusing to delete 2 paths without confirmation\nhint: pass -y/--yes (stdin is not a terminal, so there is nobody to ask)\n',
    );
  });
});

describe('terminal prompts', () => {
  it('login asks for the key without echoing it', async () => {
    const home = makeHome();
    const t = testIO({
      home,
      tty: true,
      stdin: `${session.server.runtimeKey}\r`,
      env: { TROVE_BASE_URL: session.server.baseUrl },
    });
    expect(await main(['login', '-n', 'typed'], t.io)).toBe(0);
    expect(t.stderr.text).toContain('API key: ');
    expect(t.stderr.text + t.stdout.text).not.toContain(session.server.runtimeKey);
    const whoami = testIO({ home });
    expect(await main(['whoami', '--json'], whoami.io)).toBe(0);
    expect(JSON.parse(whoami.stdout.text)).toMatchObject({ namespace: 'typed', base_url: session.server.baseUrl });
  });

  it('Ctrl-C at a confirmation exits 130 and deletes nothing', async () => {
    const t = testIO({ home: makeHome(), env, tty: true, stdin: '\x03' });
    expect(await main(['rm', 'two.txt', 'dir'], t.io)).toBe(130);
    const ls = testIO({ home: makeHome(), env });
    await main(['ls'], ls.io);
    expect(ls.stdout.text).toContain('two.txt');
  });
});

describe('arguments and exit codes', () => {
  it('--help and --version exit 0 on stdout; usage errors exit 1 on stderr', async () => {
    const help = testIO({ home: makeHome() });
    expect(await main(['--help'], help.io)).toBe(0);
    expect(help.stdout.text).toContain('Usage: trove');
    const version = testIO({ home: makeHome() });
    expect(await main(['--version'], version.io)).toBe(0);
    expect(version.stdout.text.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const unknown = testIO({ home: makeHome() });
    expect(await main(['frobnicate'], unknown.io)).toBe(1);
    expect(unknown.stderr.text).toContain("error: unknown command 'frobnicate'");
    const missing = testIO({ home: makeHome() });
    expect(await main(['cat'], missing.io)).toBe(1);
    expect(missing.stderr.text).toContain("error: missing required argument 'path'");
    const badInt = testIO({ home: makeHome() });
    expect(await main(['events', 'list', '--limit', 'ten'], badInt.io)).toBe(1);
    expect(badInt.stderr.text).toContain('--limit must be a whole number');
  });

  it('global options work before and after the command; run passes everything after its command through', async () => {
    const before = testIO({ home: makeHome(), env });
    expect(await main(['--json', 'ls'], before.io)).toBe(0);
    expect(JSON.parse(before.stdout.text).entries).toBeInstanceOf(Array);
    const run = testIO({ home: makeHome(), env });
    expect(await main(['run', 'echo', '-n', 'x', '--json'], run.io)).toBe(0);
    expect(run.stdout.text).toBe('x --json');
  });

  it('run returns the remote exit code; --debug adds the request id', async () => {
    const t = testIO({ home: makeHome(), env });
    expect(await main(['run', 'exit 42'], t.io)).toBe(42);
    const dbg = testIO({ home: makeHome(), env });
    expect(await main(['cat', 'missing.txt', '--debug'], dbg.io)).toBe(1);
    expect(dbg.stderr.text).toMatch(/debug: HTTP 404 \(path_not_found\)/);
    expect(dbg.stderr.text).toMatch(/debug: request id req-/);
  });

  it('Ctrl-C (the IO signal) stops tail with 130', async () => {
    const t = testIO({ home: makeHome(), env });
    const done = main(['tail'], t.io);
    setTimeout(() => t.abort.abort(), 300);
    expect(await done).toBe(130);
    expect(t.stderr.text).toBe('');
  });
});
