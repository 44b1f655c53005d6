/**
 * A listing costs what its cap allows, not what the directory holds: a
 * directory of hundreds of thousands of entries made by exec is read in
 * bounded batches and only up to the 1,000-entry cap. (Not in the PostgreSQL pass: no database involved.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';

const ENTRIES = 300_000;
let server: StartedServer;

function hwmKiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

async function call(path: string, body?: unknown) {
  const res = await fetch(server.baseUrl + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${server.runtimeKey}`,
      'x-namespace': 'wide',
      'content-type': 'application/json',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  // Creating 300,000 inodes is kernel time charged to the command: over a minute of CPU on an ext4 that skips
  // recently freed inodes one by one (after other tests' deletes). The listing is what is tested, not exec's limits.
  server = await startServer({ env: { TROVE_EXEC_TIMEOUT_MS: '280000', TROVE_EXEC_CPU_SECONDS: '280' } });
  expect((await call('/write', { path: 'small/a.txt', content: 'a' })).status).toBe(200);
  // Empty files, made inside the sandbox the way a tenant would.
  const made = await call('/v1/exec', {
    command: `mkdir -p workspace/huge && cd workspace/huge && python3 -c "
import os
for i in range(${ENTRIES}):
    os.close(os.open('f%07d' % i, os.O_CREAT | os.O_WRONLY, 0o644))
" && ls -f | wc -l`,
  });
  expect(made.status, JSON.stringify(made.body)).toBe(200);
  expect(Number(made.body.stdout.trim())).toBe(ENTRIES + 2);
}, 300_000);

afterAll(async () => {
  await server?.close();
});

describe('listing a huge directory', () => {
  it('answers the first 1,000 entries with truncated, without reading the directory into memory', async () => {
    // Warm up both code paths so that the high-water mark reflects the listing itself.
    await call('/v1/files?path=small');
    const before = hwmKiB(server.proc.pid!);
    for (const recursive of ['', '&recursive=true']) {
      const { status, body } = await call(`/v1/files?path=huge${recursive}`);
      expect(status).toBe(200);
      expect(body.truncated).toBe(true);
      expect(body.entries).toHaveLength(1000);
      for (const e of body.entries) expect(e).toMatchObject({ is_dir: false, size_bytes: 0 });
      const names = body.entries.map((e: { name: string }) => e.name);
      expect([...names].sort()).toEqual(names);
    }
    const root = await call('/v1/files?recursive=true');
    expect(root.body.truncated).toBe(true);
    expect(root.body.entries).toHaveLength(1000);
    // Reading and sorting 300,000 entries (names, stats, objects) costs tens of MiB; the capped read, a few.
    const grownMiB = (hwmKiB(server.proc.pid!) - before) / 1024;
    expect(grownMiB, `peak RSS grew by ${grownMiB.toFixed(1)} MiB`).toBeLessThan(24);
  });
});
