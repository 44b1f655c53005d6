#!/usr/bin/env node
/**
 * Soak: 64 simulated agents, each in its own namespace, doing what agents do
 * (write, read, list, read as text, exec, check events, delete) with a short
 * think time, for a bounded time. Every answer is checked, not just counted:
 *
 *   - zero 5xx and zero connection errors;
 *   - reads return exactly the bytes the agent last wrote, listings contain
 *     every file it owns, exec sees the same file sizes;
 *   - read-your-writes on events: an agent's newest event is its last mutation;
 *   - zero lost events: after the run, every successful mutation's event is
 *     found in the workspace's event log;
 *   - RSS stable: the median RSS of the last 15 % of the run against the median
 *     just after warm-up (20–35 %); growth must stay ≤ max(32 MiB, 25 %).
 *
 * Latency p99 of write, read and list against issue 20's budgets, each next to
 * what the machine allows under the same load (lib/load-probe.mjs, run beside
 * the soak): a bare node:http GET of 4 KiB and a bare durable 4 KiB write.
 *
 *   node bench/soak.mjs [--minutes 2] [--quick] [--agents 64] [--think-ms 20-200] [--mix exec=0,write=40]
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './lib/args.mjs';
import { startServer, repoRoot } from './lib/server.mjs';
import { makeClient } from './lib/http-client.mjs';
import { sampleRss } from './lib/rss.mjs';
import { cpuTimeMs } from './lib/cpu.mjs';
import { summarize, median, MiB, fmtNum, fmtBytes } from './lib/stats.mjs';
import { row, finish, loadLine, stamp } from './lib/report.mjs';
import { reportProfile } from './lib/profile.mjs';

const args = parseArgs();
const quick = args.has('quick');
const minutes = args.num('minutes', quick ? 0.5 : 2);
const agents = args.num('agents', 64);
const [thinkMin, thinkMax] = args.str('think-ms', '20-200').split('-').map(Number);
const profileDir = args.has('profile') ? join(repoRoot, 'bench', 'results', `profile-soak-${stamp()}`) : null;

// Relative weights of what an agent does next.
const MIX = { write: 30, read: 22, list: 12, content: 8, exec: 10, events: 12, delete: 6 };
// --mix exec=0,write=50 overrides weights (exec=0 shows what exec costs everyone else).
for (const part of (args.str('mix', '') || '').split(',').filter(Boolean)) {
  const [op, w] = part.split('=');
  if (!(op in MIX) || !Number.isFinite(Number(w)))
    throw new Error(`--mix: unknown "${part}" (ops: ${Object.keys(MIX).join(', ')})`);
  MIX[op] = Number(w);
}

console.log(`soak: ${agents} agents for ${minutes} min, think ${thinkMin}–${thinkMax} ms, mix ${JSON.stringify(MIX)}`);
console.log(loadLine('load at start'));

const server = await startServer({ logLevel: args.str('log-level'), cpuProfDir: profileDir ?? undefined });
const client = makeClient(server.baseUrl, { connections: agents + 4 });
const runtime = { authorization: `Bearer ${server.runtimeKey}` };
const admin = { authorization: `Bearer ${server.adminKey}` };
const rows = [];

const counts = { ops: 0, byOp: {}, status: {}, fiveXX: 0, netErrors: 0, unexpected: 0, busy429: 0 };
const problems = { readMismatch: 0, listMissing: 0, contentMismatch: 0, execMismatch: 0, readYourWrites: 0 };
const examples = [];
const latency = {};
const expected = new Map(); // "type|ns|key" → count
const note = (kind, detail) => {
  if (examples.length < 20) examples.push({ kind, ...detail });
};
const expect = (type, ns, key) => {
  const k = `${type}|${ns}|${key}`;
  expected.set(k, (expected.get(k) ?? 0) + 1);
};

const pick = (() => {
  const entries = Object.entries(MIX);
  const total = entries.reduce((n, [, w]) => n + w, 0);
  return () => {
    let r = Math.random() * total;
    for (const [op, w] of entries) if ((r -= w) < 0) return op;
    return entries[0][0];
  };
})();
const rand = (n) => Math.floor(Math.random() * n);

/** One request, with status bookkeeping; resolves null on a connection error. */
async function call(op, req, okStatuses = [200]) {
  let res;
  try {
    res = await client.request({ timeoutMs: 60_000, ...req });
  } catch (err) {
    counts.netErrors++;
    note('network', { op, error: String(err.message ?? err) });
    return null;
  }
  counts.status[res.status] = (counts.status[res.status] ?? 0) + 1;
  (latency[op] ??= []).push(res.ms);
  if (res.status >= 500) {
    counts.fiveXX++;
    note('5xx', { op, status: res.status, body: res.body.toString('utf8').slice(0, 300) });
  } else if (!okStatuses.includes(res.status)) {
    counts.unexpected++;
    note('unexpected status', { op, status: res.status, body: res.body.toString('utf8').slice(0, 300) });
  }
  return res;
}

let execAvailable = true;
{
  const probe = await client.request({
    method: 'POST',
    path: '/v1/exec',
    headers: { ...runtime, 'x-namespace': 'probe' },
    body: { command: 'true' },
  });
  if (probe.status !== 200) {
    execAvailable = false;
    console.log(
      `exec unavailable (${probe.status}: ${probe.body.toString('utf8').slice(0, 200)}): dropped from the mix`,
    );
  } else expect('exec.completed', 'probe', 'true');
}

const soakStart = new Date(Date.now() - 1000).toISOString();
const durationMs = minutes * 60_000;
const started = Date.now();
const deadline = started + durationMs;
const rss = sampleRss(server.pid, 1000);
const cpuStart = cpuTimeMs(server.pid);
// The machine's own p99s under this load, measured beside the agents for as long as they run.
const probe = (() => {
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL('./lib/load-probe.mjs', import.meta.url)), String(Math.max(1, durationMs / 1000 - 1))],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve) =>
    child.once('exit', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        resolve(null);
      }
    }),
  );
})();

async function agent(a) {
  const ns = `agent-${String(a).padStart(2, '0')}`;
  const h = { ...runtime, 'x-namespace': ns };
  const files = new Map(); // rel path → Buffer
  let last = null; // {type, key} of this agent's newest mutation
  let n = 0;
  const anyFile = () => [...files.keys()][rand(files.size)];
  await sleep(rand(thinkMax)); // do not start in lockstep
  while (Date.now() < deadline) {
    let op = pick();
    if (op === 'exec' && !execAvailable) op = 'read';
    if ((op === 'read' || op === 'content' || op === 'delete') && files.size === 0) op = 'write';
    if (op === 'events' && last === null) op = 'write';
    counts.ops++;
    counts.byOp[op] = (counts.byOp[op] ?? 0) + 1;
    n++;
    switch (op) {
      case 'write': {
        const text = Math.random() < 0.5;
        const path = text ? `notes/n${rand(20)}.md` : `data/d${rand(4)}/b${rand(10)}.bin`;
        let res;
        let body;
        if (text) {
          body = Buffer.from(`# note ${a}/${n}\n${'lorem ipsum '.repeat(1 + rand(400))}\n`);
          res = await call(op, {
            method: 'POST',
            path: '/write',
            headers: h,
            body: { path, content: body.toString('utf8') },
          });
        } else {
          body = randomBytes(rand(64 * 1024) + 1);
          res = await call(op, { method: 'PUT', path: `/files/${path}`, headers: h, body });
        }
        if (res?.status === 200) {
          files.set(path, body);
          expect('file.written', ns, `workspace/${path}`);
          last = { type: 'file.written', key: `workspace/${path}` };
        }
        break;
      }
      case 'read': {
        const path = anyFile();
        const res = await call(op, { path: `/files/${path}`, headers: h });
        if (res?.status === 200 && !res.body.equals(files.get(path))) {
          problems.readMismatch++;
          note('read mismatch', { ns, path, got: res.body.length, want: files.get(path).length });
        }
        break;
      }
      case 'content': {
        const path = anyFile();
        const res = await call(op, {
          path: `/v1/files/content?path=${encodeURIComponent(`workspace/${path}`)}`,
          headers: h,
        });
        if (res?.status === 200) {
          const j = JSON.parse(res.body.toString('utf8'));
          const want = files.get(path);
          const ok =
            j.size_bytes === want.length &&
            (j.encoding === 'binary' || j.content === want.toString('utf8').slice(0, j.content.length));
          if (!ok) {
            problems.contentMismatch++;
            note('content mismatch', { ns, path, size: j.size_bytes, want: want.length });
          }
        }
        break;
      }
      case 'list': {
        const res = await call(op, { path: '/v1/files?path=workspace/&recursive=true', headers: h });
        if (res?.status === 200) {
          const listed = new Set(JSON.parse(res.body.toString('utf8')).entries.map((e) => e.path));
          for (const p of files.keys()) {
            if (!listed.has(`workspace/${p}`)) {
              problems.listMissing++;
              note('list missing', { ns, path: p });
            }
          }
        }
        break;
      }
      case 'exec': {
        const path = files.size ? anyFile() : null;
        // The nonce makes the command (and so its exec.completed event) unique.
        const command = path
          ? `: soak-${a}-${n}; wc -c < 'workspace/${path}'`
          : `: soak-${a}-${n}; ls workspace | wc -l`;
        const res = await call(op, { method: 'POST', path: '/v1/exec', headers: h, body: { command } }, [200, 429]);
        if (res?.status === 429) counts.busy429++;
        if (res?.status === 200) {
          expect('exec.completed', ns, command);
          last = { type: 'exec.completed', key: command };
          const j = JSON.parse(res.body.toString('utf8'));
          if (path && (j.exit_code !== 0 || Number(j.stdout.trim()) !== files.get(path).length)) {
            problems.execMismatch++;
            note('exec mismatch', {
              ns,
              path,
              exit: j.exit_code,
              stdout: j.stdout.slice(0, 100),
              stderr: j.stderr.slice(0, 200),
            });
          }
        }
        break;
      }
      case 'events': {
        const res = await call(op, {
          path: `/v1/workspaces/${server.workspaceId}/events?namespace=${ns}&limit=5`,
          headers: h,
        });
        if (res?.status === 200) {
          const newest = JSON.parse(res.body.toString('utf8')).events[0];
          const key = newest ? (newest.type === 'exec.completed' ? newest.data.command : newest.data.path) : null;
          if (!newest || newest.type !== last.type || key !== last.key) {
            problems.readYourWrites++;
            note('newest event is not the last mutation', {
              ns,
              want: last,
              got: newest ? { type: newest.type, key } : null,
            });
          }
        }
        break;
      }
      case 'delete': {
        const path = anyFile();
        const res = await call(op, { method: 'POST', path: '/delete', headers: h, body: { path } });
        if (res?.status === 200) {
          files.delete(path);
          expect('file.deleted', ns, `workspace/${path}`);
          last = { type: 'file.deleted', key: `workspace/${path}` };
        }
        break;
      }
    }
    await sleep(thinkMin + rand(thinkMax - thinkMin + 1));
  }
}

const progress = setInterval(() => {
  const s = Math.round((Date.now() - started) / 1000);
  console.log(
    `  ${s}s: ${counts.ops} ops, 5xx ${counts.fiveXX}, net errors ${counts.netErrors}, 429 ${counts.busy429}, RSS ${fmtBytes(rss.now())}`,
  );
}, 15_000);
await Promise.all(Array.from({ length: agents }, (_, a) => agent(a)));
clearInterval(progress);
const machine = await probe;
const elapsed = (Date.now() - started) / 1000;
const cpuUsed = cpuTimeMs(server.pid) - cpuStart;
const rssRun = rss.stop();

// ---------- every mutation's event in the log? ----------
const found = new Map();
let pages = 0;
let cursor = null;
let eventsRead = 0;
let logError = null;
for (;;) {
  const q = `limit=200&since=${encodeURIComponent(soakStart)}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
  const res = await client.request({ path: `/v1/workspaces/${server.workspaceId}/events?${q}`, headers: admin });
  if (res.status !== 200) {
    logError = `${res.status} ${res.body.toString('utf8').slice(0, 200)}`;
    break;
  }
  const page = JSON.parse(res.body.toString('utf8'));
  pages++;
  for (const e of page.events) {
    eventsRead++;
    const key = e.type === 'exec.completed' ? e.data.command : e.data?.path;
    const k = `${e.type}|${e.namespace}|${key}`;
    found.set(k, (found.get(k) ?? 0) + 1);
  }
  cursor = page.next_cursor;
  if (!cursor) break;
}
let lost = 0;
let expectedTotal = 0;
for (const [k, want] of expected) {
  expectedTotal += want;
  const got = found.get(k) ?? 0;
  if (got < want) {
    lost += want - got;
    note('lost event', { key: k, want, got });
  }
}
if (logError) lost = expectedTotal; // could not check: count as all lost rather than pass silently

const alive = await client.request({ path: '/v1/me', headers: admin }).catch(() => null);
const log = server.output();
const logErrors = (log.match(/"level":(50|60)/g) ?? []).length;
const logWarnings = (log.match(/"level":40|\bWarning:/g) ?? []).length;
// Node prints this when the GC has to close a FileHandle nobody closed: a leak that the
// fd count alone can miss, because a busy server collects often enough to hide it.
const gcClosedFds = (log.match(/Closing file descriptor \d+ on garbage collection/g) ?? []).length;

client.close();
await server.stop();
if (profileDir) reportProfile(profileDir);
await server.close();

// ---------- RSS: after warm-up vs the end ----------
const at = (from, to) =>
  median(rssRun.samples.filter((s) => s.t >= from * durationMs && s.t <= to * durationMs).map((s) => s.rss));
const rssStart = at(0.2, 0.35);
const rssEnd = at(0.85, 1.01);
const growth = rssEnd - rssStart;
const allowed = Math.max(32 * MiB, 0.25 * rssStart);
// Open descriptors, same windows: a per-request leak (a download's file handle left
// to the GC) adds one per request, thousands by the end; sockets and exec pipes of
// the 64 agents make the rest, which the median over each window smooths.
const fdsAt = (from, to) =>
  median(
    rssRun.samples
      .filter((s) => s.fds !== null && s.t >= from * durationMs && s.t <= to * durationMs)
      .map((s) => s.fds),
  );
const fdsStart = fdsAt(0.2, 0.35);
const fdsEnd = fdsAt(0.85, 1.01);
const fdsAllowed = Math.max(64, Math.round(0.25 * fdsStart));

const lat = Object.fromEntries(Object.entries(latency).map(([op, xs]) => [op, summarize(xs)]));
console.log(
  `\n${counts.ops} operations in ${elapsed.toFixed(0)} s (${fmtNum(counts.ops / elapsed)} ops/s): ${JSON.stringify(counts.byOp)}`,
);
console.log(`statuses ${JSON.stringify(counts.status)}; exec busy (429) ${counts.busy429}`);
console.log(
  `latency p50/p99 ms: ${Object.entries(lat)
    .map(([op, s]) => `${op} ${fmtNum(s.p50)}/${fmtNum(s.p99)}`)
    .join(', ')}`,
);
if (machine) {
  console.log(
    `machine under this load, p50/p99 ms: bare durable write ${fmtNum(machine.write.p50)}/${fmtNum(machine.write.p99)}, bare node:http GET ${fmtNum(machine.get.p50)}/${fmtNum(machine.get.p99)}, idle timer lateness ${fmtNum(machine.timer.p50)}/${fmtNum(machine.timer.p99)}`,
  );
}
console.log(`events: ${expectedTotal} expected, ${eventsRead} read back in ${pages} pages, ${lost} lost`);
console.log(
  `server CPU: ${fmtNum(cpuUsed / Math.max(1, counts.ops))} ms per operation, ${(cpuUsed / 1000 / elapsed).toFixed(2)} cores on average`,
);
console.log(`RSS after warm-up ${fmtBytes(rssStart)}, at the end ${fmtBytes(rssEnd)}, peak ${fmtBytes(rssRun.peak)}`);
console.log(`open fds after warm-up ${fmtNum(fdsStart)}, at the end ${fmtNum(fdsEnd)}`);
if (examples.length) console.log('first problems:', JSON.stringify(examples.slice(0, 8), null, 1));

const checks = counts.netErrors + counts.unexpected;
rows.push(row({ metric: `${agents} agents × ${minutes} min`, unit: 'ops/s', ours: counts.ops / elapsed }));
rows.push(
  row({
    metric: 'server CPU per operation',
    unit: 'ms',
    ours: cpuUsed / Math.max(1, counts.ops),
    note: `server used ${(cpuUsed / 1000 / elapsed).toFixed(2)} cores on average (its exec children not included)`,
  }),
);
rows.push(row({ metric: '5xx responses', unit: '', ours: counts.fiveXX, target: '= 0', pass: counts.fiveXX === 0 }));
rows.push(
  row({
    metric: 'connection errors + unexpected 4xx',
    unit: '',
    ours: checks,
    target: '= 0',
    pass: checks === 0,
    note: `net ${counts.netErrors}, unexpected ${counts.unexpected}; 429 from exec (allowed) ${counts.busy429}`,
  }),
);
const wrong = problems.readMismatch + problems.listMissing + problems.contentMismatch + problems.execMismatch;
rows.push(
  row({
    metric: 'wrong answers (read/list/content/exec)',
    unit: '',
    ours: wrong,
    target: '= 0',
    pass: wrong === 0,
    note: JSON.stringify(problems),
  }),
);
rows.push(
  row({
    metric: 'read-your-writes misses (events)',
    unit: '',
    ours: problems.readYourWrites,
    target: '= 0',
    pass: problems.readYourWrites === 0,
  }),
);
rows.push(
  row({
    metric: `lost events (of ${expectedTotal})`,
    unit: '',
    ours: lost,
    target: '= 0',
    pass: lost === 0 && !logError,
    note: logError ?? undefined,
  }),
);
rows.push(
  row({
    metric: 'RSS end vs after warm-up',
    unit: 'MiB',
    ours: rssEnd / MiB,
    baseline: rssStart / MiB,
    ratio: rssStart / rssEnd,
    target: `≤ +${fmtNum(allowed / MiB)} MiB`,
    pass: growth <= allowed,
  }),
);
if (Number.isFinite(fdsStart) && Number.isFinite(fdsEnd)) {
  rows.push(
    row({
      metric: 'open fds end vs after warm-up',
      unit: '',
      ours: fdsEnd,
      baseline: fdsStart,
      ratio: null,
      target: `≤ +${fdsAllowed}`,
      pass: fdsEnd - fdsStart <= fdsAllowed,
    }),
  );
}
rows.push(
  row({
    metric: 'file handles closed by the GC (leaked)',
    unit: '',
    ours: gcClosedFds,
    target: '= 0',
    pass: gcClosedFds === 0,
  }),
);
rows.push(
  row({
    metric: 'server alive at the end (GET /v1/me)',
    unit: '',
    ours: alive?.status ?? 0,
    target: '= 200',
    pass: alive?.status === 200,
  }),
);
rows.push(row({ metric: 'server log: error lines', unit: '', ours: logErrors, target: '= 0', pass: logErrors === 0 }));
rows.push(row({ metric: 'server log: warning lines', unit: '', ours: logWarnings }));
// Issue 20's budgets; the machine's own figure under the same load is the baseline (lib/load-probe.mjs).
const budget = { write: 25, read: 15, list: 15 };
const reference = { write: machine?.write, read: machine?.get, list: machine?.get };
for (const op of ['write', 'read', 'list', 'exec', 'events']) {
  if (!lat[op]) continue;
  const ref = reference[op]?.p99 ?? null;
  rows.push(
    row({
      metric: `${op} latency p99${ref !== null ? (op === 'write' ? ' vs bare durable write' : ' vs bare node:http GET') : ''}`,
      unit: 'ms',
      ours: lat[op].p99,
      baseline: ref,
      ratio: ref !== null ? ref / lat[op].p99 : null,
      target: budget[op] ? `≤ ${budget[op]} ms` : null,
      pass: budget[op] ? lat[op].p99 <= budget[op] : null,
    }),
  );
}
if (machine) {
  rows.push(
    row({
      metric: 'machine under this load: bare durable 4 KiB write p99',
      unit: 'ms',
      ours: machine.write.p99,
      note: `temp file, write, fsync, rename, fsync of the directory, one at a time (p50 ${fmtNum(machine.write.p50)} ms, max ${fmtNum(machine.write.max)} ms)`,
    }),
  );
  rows.push(
    row({
      metric: 'machine under this load: bare node:http GET 4 KiB p99',
      unit: 'ms',
      ours: machine.get.p99,
      note: `lib/node-static.mjs in its own process, one request at a time (p50 ${fmtNum(machine.get.p50)} ms)`,
    }),
  );
  rows.push(
    row({
      metric: 'machine under this load: idle 10 ms timer lateness p99',
      unit: 'ms',
      ours: machine.timer.p99,
      note: `max ${fmtNum(machine.timer.max)} ms: how long a process that does nothing waits for a core`,
    }),
  );
}

finish('soak', rows, {
  params: { quick, minutes, agents, thinkMin, thinkMax, mix: MIX, execAvailable },
  detail: {
    counts,
    problems,
    examples,
    latency: lat,
    rss: { start: rssStart, end: rssEnd, peak: rssRun.peak, samples: rssRun.samples },
    fds: { start: fdsStart, end: fdsEnd },
    events: { expected: expectedTotal, read: eventsRead, pages, lost },
    machine,
  },
});
