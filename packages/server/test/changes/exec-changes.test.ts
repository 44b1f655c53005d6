/**
 * Changes made by one-shot execs become events (fanotify, real server, real bwrap): exactly the paths a
 * command changed, attributed to it, committed before its exec.completed; the cap and its summary; no
 * event in another namespace; no duplicate for the files API's own writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { client, type Envelope } from './support.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const isRoot = process.getuid?.() === 0;

const changeTypes = new Set(['file.written', 'file.deleted', 'dir.created', 'dir.deleted', 'files.changed']);

describe.skipIf(!hasBwrap || !isRoot)('changes made by execs (fanotify)', () => {
  let server: StartedServer;

  beforeAll(async () => {
    server = await startServer({ env: { TROVE_CHANGES: 'fanotify', TROVE_EXEC_TIMEOUT_MS: '60000' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('records one event per changed path, attributed to the command, before its exec.completed', async () => {
    const c = client(server, 'chg-basic');
    await c.exec('cd workspace && mkdir -p d && echo one > d/a.txt && echo two > b.txt && rm b.txt && echo old > keep.txt');
    const r = await c.exec('cd workspace; echo new >> keep.txt; echo three > d/c.txt; rm d/a.txt; mkdir e; mv d/c.txt e/c.txt');
    expect(r.exit_code).toBe(0);
    const events = await c.events();
    const completed = events.filter((e) => e.type === 'exec.completed');
    expect(completed).toHaveLength(2);
    const execId = completed[1]!.data.exec_id as string;
    expect(execId).toMatch(/^exec-[0-9a-f]{24}$/);
    const second = events.filter((e) => e.data.exec_id === execId && e.type !== 'exec.completed');
    expect(second.map((e) => [e.type, e.data.path])).toEqual([
      ['file.written', 'workspace/keep.txt'],
      ['file.deleted', 'workspace/d/a.txt'],
      ['dir.created', 'workspace/e'],
      ['file.written', 'workspace/e/c.txt'],
    ]);
    for (const e of second) expect(e.data.source).toBe('exec');
    expect(second[0]!.data.size_bytes).toBe(8);
    // Every change of a command is in the log before its exec.completed.
    const at = events.indexOf(completed[1]!);
    for (const e of second) expect(events.indexOf(e)).toBeLessThan(at);
    // The first command: b.txt was created and removed within it, so it left nothing.
    const first = events.filter((e) => e.data.exec_id === completed[0]!.data.exec_id && changeTypes.has(e.type));
    expect(first.map((e) => [e.type, e.data.path])).toEqual([
      ['dir.created', 'workspace/d'],
      ['file.written', 'workspace/d/a.txt'],
      ['file.written', 'workspace/keep.txt'],
    ]);
  });
});
