/**
 * The launcher's own spawn (src/sandbox/native-child.ts over the addon's spawn): descriptors, signals,
 * session, working directory, exit reporting and failures, against real processes.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnNative, type NativeChild } from '../../src/sandbox/native-child.js';
import { transpileSandboxCode } from './exec-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'trove-native-child-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Everything the child wrote on its stdout, its exit code and signal, once 'close' came. */
function finish(child: NativeChild): Promise<{ out: string; code: number | null; signal: string | null }> {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ out, code, signal })));
}

const sh = (script: string, stdio: Parameters<typeof spawnNative>[0]['stdio'] = ['none', 'out', 'out'], extra = {}) =>
  spawnNative({ file: '/bin/sh', argv: ['sh', '-c', script], env: { PATH: '/usr/bin:/bin' }, stdio, ...extra });

describe('spawnNative', () => {
  it('connects socket pairs both ways and reports the exit code on exit and close', async () => {
    const child = sh('read line; echo "got $line"; echo oops >&2; exit 7', ['in', 'out', 'out']);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d));
    const exit = new Promise((r) => child.once('exit', (code, signal) => r([code, signal])));
    child.stdin!.end('hello\n');
    const r = await finish(child);
    expect(r).toEqual({ out: 'got hello\n', code: 7, signal: null });
    expect(await exit).toEqual([7, null]);
    expect(err).toBe('oops\n');
    expect(child.exitCode).toBe(7);
  });

  it('passes only the planned descriptors; an unplanned 0-2 is /dev/null', async () => {
    const file = join(dir, 'fd5');
    const fd = openSync(file, 'w');
    try {
      const child = spawnNative({
        file: '/bin/sh',
        argv: ['sh', '-c', 'echo five >&5; ls /proc/self/fd; readlink /proc/self/fd/0'],
        env: {},
        stdio: ['none', 'out', 'none', 'none', 'none', fd],
      });
      const r = await finish(child);
      // 0, 1, 2 and 5, and ls's own directory descriptor (3): nothing else of this process.
      const [fds, stdin] = [r.out.trim().split('\n').slice(0, -1), r.out.trim().split('\n').at(-1)];
      expect(fds.map(Number).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 5]);
      expect(stdin).toBe('/dev/null');
      expect(r.code).toBe(0);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, 'utf8')).toBe('five\n');
  });

  it('passes a descriptor numbered above hundreds of others, and nothing of those others', async () => {
    const held = Array.from({ length: 400 }, () => openSync('/dev/null', 'r'));
    const file = join(dir, 'high');
    const fd = openSync(file, 'w');
    try {
      expect(fd).toBeGreaterThan(400);
      const child = spawnNative({
        file: '/bin/sh',
        argv: ['sh', '-c', 'echo high >&4; ls /proc/self/fd'],
        env: {},
        stdio: ['none', 'out', 'none', 'none', fd],
      });
      const r = await finish(child);
      expect(
        r.out
          .trim()
          .split('\n')
          .map(Number)
          .sort((a, b) => a - b),
      ).toEqual([0, 1, 2, 3, 4]);
    } finally {
      closeSync(fd);
      for (const h of held) closeSync(h);
    }
    expect(readFileSync(file, 'utf8')).toBe('high\n');
  });

  it('gives a child with a short plan /dev/null on the rest of 0-2, and refuses a plan of more than 16', async () => {
    const r = await finish(sh('readlink /proc/self/fd/2 >&1', ['none', 'out']));
    expect(r.out).toBe('/dev/null\n');
    expect(() =>
      sh(
        'true',
        Array.from({ length: 17 }, () => 'none' as const),
      ),
    ).toThrow(/at most 16 entries/);
  });

  it('gives the child every signal at its default and none blocked (node ignores SIGPIPE)', async () => {
    const r = await finish(sh('grep -E "^Sig(Blk|Ign)" /proc/self/status'));
    expect(r.out).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
  });

  it('reports a signal as node does, and kill() is refused once the child is reaped', async () => {
    const child = sh('echo up; exec sleep 60');
    const up = new Promise((r) => child.stdout!.once('data', r));
    const done = finish(child);
    await up;
    expect(child.kill('SIGTERM')).toBe(true);
    expect(await done).toMatchObject({ code: null, signal: 'SIGTERM' });
    expect(child.signalCode).toBe('SIGTERM');
    expect(child.kill('SIGKILL')).toBe(false);
  });

  it('starts a session of its own when detached, in the directory asked', async () => {
    const child = sh('cut -d" " -f6 /proc/self/stat; pwd', ['none', 'out', 'out'], { detached: true, cwd: dir });
    const r = await finish(child);
    const [sid, cwd] = r.out.trim().split('\n');
    // cut is the shell's child: its session is the shell's, whose id is the shell's pid.
    expect(Number(sid)).toBe(child.pid);
    expect(cwd).toBe(dir);
  });

  it('throws as node reports it when the file cannot be run', () => {
    expect(() =>
      spawnNative({ file: join(dir, 'missing'), argv: ['x'], env: {}, stdio: ['none', 'out', 'out'] }),
    ).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'spawn', message: `spawn ${join(dir, 'missing')} ENOENT` }),
    );
    expect(() =>
      spawnNative({ file: '/bin/sh', argv: ['sh'], env: {}, stdio: ['none', 'out', 'out'], cwd: join(dir, 'missing') }),
    ).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('keeps a script that waits only for its child alive until the close, as node children do', () => {
    const code = transpileSandboxCode(join(dir, 'alive'));
    const script = [
      `import { spawnNative } from ${JSON.stringify(join(code, 'sandbox/native-child.js'))};`,
      "const child = spawnNative({ file: '/bin/sh', argv: ['sh', '-c', 'sleep 0.3'], env: {}, stdio: ['none', 'out', 'out'] });",
      "child.once('close', (code) => console.log('closed', code));",
    ].join('\n');
    expect(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })).toBe(
      'closed 0\n',
    );
  });

  it('reaps many children exiting together, beside node children of its own (reaped by node)', async () => {
    const children = Array.from({ length: 40 }, (_, i) => sh(`exit ${i}`));
    // Node's children end among ours: an ended child that is not ours must not stop ours from being reaped.
    const nodes = Array.from(
      { length: 20 },
      (_, i) =>
        new Promise<number | null>((resolve) =>
          spawn('/bin/sh', ['-c', `exit ${i}`]).once('close', (code) => resolve(code)),
        ),
    );
    expect(execFileSync('/bin/sh', ['-c', 'echo node'], { encoding: 'utf8' })).toBe('node\n');
    const results = await Promise.all(children.map(finish));
    expect(results.map((r) => r.code)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(await Promise.all(nodes)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});
