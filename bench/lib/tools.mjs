/**
 * External baselines and load tools (Debian `wrk`, `nginx-light`). If one is
 * missing and we are root on Debian, it is installed with apt (the only
 * network access a bench does); otherwise the caller skips that row.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin'])) {
    if (dir && existsSync(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  }
  return null;
}

const PACKAGES = { wrk: 'wrk', nginx: 'nginx-light' };

/** Path of `cmd`, installing its Debian package when possible; null when unavailable. */
export function ensureTool(cmd, log = (m) => process.stderr.write(m + '\n')) {
  const found = which(cmd);
  if (found) return found;
  const canApt = process.getuid?.() === 0 && which('apt-get') && process.env.TROVE_BENCH_NO_INSTALL !== '1';
  if (!canApt) {
    log(`${cmd} not found (install the Debian package ${PACKAGES[cmd]}); skipping what needs it`);
    return null;
  }
  log(`${cmd} not found: apt-get install -y ${PACKAGES[cmd]}`);
  const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', PACKAGES[cmd]], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) {
    log(`apt-get install ${PACKAGES[cmd]} failed; skipping what needs ${cmd}`);
    return null;
  }
  return which(cmd);
}

/** A port that was free a moment ago (for tools that cannot take port 0). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function waitForPort(port, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export function gitRevision(cwd) {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return dirty ? `${rev}+dirty` : rev;
  } catch {
    return null;
  }
}
