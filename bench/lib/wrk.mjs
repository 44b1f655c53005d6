/**
 * Runs Debian's wrk against one URL and returns its totals. A generated Lua
 * `done` hook prints the summary as JSON, so nothing depends on wrk's
 * human-readable output. Responses ≥ 400 and socket errors are counted so a
 * fast stream of 401s can never pass for throughput.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DONE = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`;

/** Lua string literal. */
const lua = (s) => JSON.stringify(s);

/**
 * Uploads instead of GETs: every request is `PUT <path>` with the bytes of
 * `bodyFile`, cycling through `paths`. The requests are formatted once, when
 * wrk starts, so each one costs wrk a single write of prepared bytes.
 */
function putScript({ paths, bodyFile }, headers, host) {
  const h = [`Host = ${lua(host)}`, ...Object.entries(headers).map(([k, v]) => `[${lua(k)}] = ${lua(v)}`)].join(', ');
  return `
local f = assert(io.open(${lua(bodyFile)}, 'rb'))
local body = f:read('*a')
f:close()
local reqs = {}
for _, p in ipairs({${paths.map(lua).join(', ')}}) do
  reqs[#reqs + 1] = wrk.format('PUT', p, { ${h} }, body)
end
local n = 0
request = function()
  n = n % #reqs + 1
  return reqs[n]
end
`;
}

/**
 * @param {string} wrkBin
 * @param {object} o
 * @param {string} o.url
 * @param {number} o.connections
 * @param {number} o.seconds
 * @param {number} [o.threads]
 * @param {Record<string,string>} [o.headers]
 * @param {{paths: string[], bodyFile: string}} [o.put]  PUT these paths round-robin instead of GET url
 * @param {() => number} [o.cpu]  CPU ms of the server under test (lib/cpu.mjs): adds `cpuMsPerReq`
 */
export async function runWrk(wrkBin, { url, connections, seconds, threads = 2, headers = {}, put, cpu }) {
  const cpuBefore = cpu?.();
  const dir = mkdtempSync(join(tmpdir(), 'trove-bench-wrk-'));
  const script = join(dir, 'done.lua');
  writeFileSync(script, (put ? putScript(put, headers, new URL(url).host) : '') + DONE);
  const args = [
    '-t',
    String(Math.min(threads, connections)),
    '-c',
    String(connections),
    '-d',
    `${seconds}s`,
    '--timeout',
    '10s',
    '-s',
    script,
  ];
  if (!put) for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(url);
  try {
    const { code, stdout, stderr } = await new Promise((resolve, reject) => {
      const p = spawn(wrkBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.once('error', reject);
      p.once('exit', (code) => resolve({ code, stdout, stderr }));
    });
    const line = stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
    if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}): ${stderr}${stdout}`);
    const s = JSON.parse(line.slice('WRKJSON '.length));
    const secs = s.duration_us / 1e6;
    return {
      requests: s.requests,
      seconds: secs,
      bytes: s.bytes,
      rps: s.requests / secs,
      mibps: s.bytes / secs / (1024 * 1024),
      errors: s.connect + s.read + s.write + s.timeout,
      non2xx: s.status,
      p50ms: s.p50_us / 1000,
      p99ms: s.p99_us / 1000,
      cpuMsPerReq: cpu ? (cpu() - cpuBefore) / Math.max(1, s.requests) : undefined,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
