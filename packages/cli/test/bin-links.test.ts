/**
 * `npx trove` / `npx trove-server` in this repository and global installs run
 * the committed `bin/` entry files (npm links them at install time, before
 * any build); they must start the real programs, exit codes included.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { repoRoot } from '../../../test/helpers/server.js';

function pkgBin(pkg: string): Record<string, string> {
  return (
    JSON.parse(readFileSync(join(repoRoot, 'packages', pkg, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  ).bin;
}

it('the trove bin file runs the CLI and passes its exit code through', () => {
  const file = join(repoRoot, 'packages/cli', pkgBin('cli').trove!);
  expect(statSync(file).mode & 0o111).not.toBe(0);
  const help = spawnSync(file, ['--help'], { encoding: 'utf8' });
  expect(help.status).toBe(0);
  expect(help.stdout).toContain('Usage: trove');
  const home = mkdtempSync(join(tmpdir(), 'trove-bin-'));
  const env = { PATH: process.env.PATH ?? '', HOME: home };
  const none = spawnSync(file, ['whoami'], { encoding: 'utf8', env });
  expect(none.status).toBe(3);
  expect(none.stderr).toContain('error: not logged in');
});

it('the trove-server bin file runs the server entry point', () => {
  const file = join(repoRoot, 'packages/server', pkgBin('server')['trove-server']!);
  expect(statSync(file).mode & 0o111).not.toBe(0);
  const help = spawnSync(file, ['--help'], { encoding: 'utf8' });
  expect(help.status).toBe(0);
  expect(help.stdout).toContain('trove-server');
  const bad = spawnSync(file, ['--port', 'nope'], { encoding: 'utf8' });
  expect(bad.status).toBe(2);
});
