#!/usr/bin/env node
// `npm start`: make sure exec's sandbox is available (bubblewrap), build what
// is stale, then run the server in the foreground with every TROVE_* variable
// and any flags after `--` honoured.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

if (!has('bwrap')) {
  const isRoot = process.getuid?.() === 0;
  if (isRoot && has('apt-get')) {
    console.log('exec needs bubblewrap; installing it: apt-get install -y bubblewrap');
    const r = spawnSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq bubblewrap'], { stdio: 'inherit' });
    if (r.status !== 0)
      console.warn('warning: could not install bubblewrap; exec will answer 503 until it is installed');
  } else {
    console.warn('warning: exec needs bubblewrap. Install it with:  sudo apt-get install -y bubblewrap');
  }
}

const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
// tsc -b is incremental: a no-op when nothing changed.
run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b']);
execFileSync(process.execPath, [join(root, 'scripts/postbuild.mjs')], { cwd: root, stdio: 'inherit' });
if (
  existsSync(join(root, 'packages/dashboard/package.json')) &&
  !existsSync(join(root, 'packages/dashboard/dist/index.html'))
) {
  run('npm', ['run', 'build', '-w', 'trove-dashboard', '--if-present']);
}

const child = spawn(process.execPath, [join(root, 'packages/server/bin/trove-server.cjs'), ...process.argv.slice(2)], {
  cwd: process.cwd(),
  stdio: 'inherit',
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
