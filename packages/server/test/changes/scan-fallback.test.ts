/**
 * Without fanotify (TROVE_CHANGES=scan, what a server that is not root gets): a one-shot exec's namespace
 * is compared before and after; the bound, and the limitation stated in the admin health view.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { client } from './support.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
const changeTypes = new Set(['file.written', 'file.deleted', 'dir.created', 'dir.deleted', 'files.changed']);

describe.skipIf(!hasBwrap)('changes made by execs (before/after scan)', () => {
  let server: StartedServer;

  beforeAll(async () => {
    server = await startServer({ env: { TROVE_CHANGES: 'scan', TROVE_CHANGES_SCAN_MAX_FILES: '300' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('records what changed between before and after, attributed to the command, before exec.completed', async () => {
    const c = client(server, 'scan-basic');
    await c.exec('cd workspace && mkdir d && echo 1 > d/a && echo 2 > b && echo 3 > c');
    await c.exec('cd workspace && rm -r d && echo 22 > b && mkdir e && echo 4 > e/f && echo tmp > t && rm t');
    const events = await c.events();
    const completed = events.filter((e) => e.type === 'exec.completed');
    const mine = events.filter((e) => e.data.exec_id === completed[1]!.data.exec_id && changeTypes.has(e.type));
    // Removals first (a directory after its entries), then creations and rewrites in path order; t never existed for the scan.
    expect(mine.map((e) => [e.type, e.data.path])).toEqual([
      ['file.deleted', 'workspace/d/a'],
      ['dir.deleted', 'workspace/d'],
      ['file.written', 'workspace/b'],
      ['dir.created', 'workspace/e'],
      ['file.written', 'workspace/e/f'],
    ]);
    expect(mine.find((e) => e.data.path === 'workspace/b')!.data).toMatchObject({ size_bytes: 3, source: 'exec' });
    expect(events.indexOf(mine.at(-1)!)).toBeLessThan(events.indexOf(completed[1]!));
  });

  it('a tree larger than the scan bound gets a summary saying the changes are incomplete', async () => {
    const c = client(server, 'scan-big');
    await c.exec('cd workspace && touch $(seq -f f%g 1 400)');
    const events = await c.events();
    const summary = events.find((e) => e.type === 'files.changed')!;
    expect(summary.data).toMatchObject({ source: 'exec', incomplete: true, scan: true });
    expect(events.filter((e) => e.type === 'file.written')).toHaveLength(300);
  });

  it('the admin health view says which mode runs and what it does not see', async () => {
    const c = client(server, 'scan-health');
    const body = (await (await c.admin('/v1/admin/health')).json()) as {
      change_tracking: { mode: string; limits: string[] };
    };
    expect(body.change_tracking.mode).toBe('scan');
    expect(body.change_tracking.limits.join(' ')).toContain("background processes' changes are not recorded");
    expect(body.change_tracking.limits.join(' ')).toContain('at most 300 entries');
  });
});
