#!/usr/bin/env node
/**
 * `npm run setup:toolbox`: installs bubblewrap and the exec toolbox that
 * docs/protocol.md promises (jq, awk, sed, grep, file, sha256sum, md5sum, xxd,
 * base64, gzip, tar, python3, pdftotext, pdfinfo, ffmpeg, ffprobe,
 * ImageMagick convert/identify, exiftool) with apt.
 *
 *   npm run setup:toolbox            install what is missing (root), else print the apt command
 *   npm run setup:toolbox -- --check only report what is missing (exit 1 if anything is)
 *   node scripts/setup-toolbox.mjs --for-tests   what `npm test` runs first: the toolbox plus what
 *                                    only the tests use (btrfs-progs for the hard-quota image, Chromium
 *                                    for the dashboard); without root or apt it prints the command and
 *                                    lets the tests go on (those that need a missing tool are skipped,
 *                                    and their names say which tool is missing)
 *
 * Debian/Ubuntu only; on other systems it prints the package list to map by hand.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** command → Debian package that provides it. */
const TOOLS = {
  bwrap: 'bubblewrap',
  setpriv: 'util-linux',
  sh: 'dash',
  bash: 'bash',
  jq: 'jq',
  awk: 'gawk',
  sed: 'sed',
  grep: 'grep',
  file: 'file',
  sha256sum: 'coreutils',
  md5sum: 'coreutils',
  base64: 'coreutils',
  xxd: 'xxd',
  gzip: 'gzip',
  tar: 'tar',
  python3: 'python3',
  pdftotext: 'poppler-utils',
  pdfinfo: 'poppler-utils',
  ffmpeg: 'ffmpeg',
  ffprobe: 'ffmpeg',
  convert: 'imagemagick',
  identify: 'imagemagick',
  exiftool: 'libimage-exiftool-perl',
  ps: 'procps',
};
/** Not commands, but what the tools need to be useful: CA roots, a font for ImageMagick text. */
const EXTRA_PACKAGES = ['ca-certificates', 'fonts-dejavu-core'];

const check = process.argv.includes('--check');
const forTests = process.argv.includes('--for-tests');
if (forTests) Object.assign(TOOLS, { 'mkfs.btrfs': 'btrfs-progs', chromium: 'chromium' });
/** With --for-tests a machine that cannot install is not an error: the tests say what they miss. */
const cannotInstall = forTests ? 0 : 1;
const isRoot = process.getuid?.() === 0;

function has(cmd) {
  // The sandbox only sees /usr and the /bin,/lib links into it: look there, not in the caller's PATH.
  return ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'].some((d) => existsSync(`${d}/${cmd}`));
}

function aptHas(pkg) {
  const r = spawnSync('apt-cache', ['show', '--no-all-versions', pkg], { encoding: 'utf8' });
  return r.status === 0 && /^Package:/m.test(r.stdout);
}

const missing = Object.keys(TOOLS).filter((c) => !has(c));
if (process.platform !== 'linux') {
  console.log('The exec sandbox needs Linux with bubblewrap; nothing to install on this system.');
  process.exit(0);
}
if (missing.length === 0) {
  console.log(`Exec toolbox complete: ${Object.keys(TOOLS).join(', ')}.`);
  process.exit(0);
}
console.log(`Missing from the exec toolbox: ${missing.join(', ')}`);
if (check) process.exit(1);

const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status === 0;
let packages = [...new Set([...missing.map((c) => TOOLS[c]), ...EXTRA_PACKAGES])];
if (!hasApt) {
  console.log(
    `No apt-get here. Install the equivalents of these Debian packages with your package manager:\n  ${packages.join(' ')}`,
  );
  process.exit(cannotInstall);
}
// Debian 11 / Ubuntu 20.04 ship xxd inside vim-common.
if (packages.includes('xxd') && !aptHas('xxd')) packages = packages.map((p) => (p === 'xxd' ? 'vim-common' : p));

const install = ['apt-get', 'install', '-y', '--no-install-recommends', ...packages];
if (!isRoot) {
  if (forTests)
    console.log(`Not installed: ${missing.join(', ')}. The tests that need them are skipped (see their names).`);
  console.log('Run as root to install them:');
  console.log(`  sudo apt-get update && sudo ${install.join(' ')}`);
  process.exit(cannotInstall);
}

const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const cmd of [['apt-get', 'update'], install]) {
  console.log(`$ ${cmd.join(' ')}`);
  const r = spawnSync(cmd[0], cmd.slice(1), { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`\`${cmd.join(' ')}\` failed with exit code ${r.status}`);
    process.exit(r.status ?? 1);
  }
}
const still = Object.keys(TOOLS).filter((c) => !has(c));
if (still.length) {
  console.error(`Still missing after install: ${still.join(', ')}`);
  process.exit(1);
}
console.log('Exec toolbox installed. The server probes the sandbox at start and logs how to fix anything left.');
