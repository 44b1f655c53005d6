/**
 * Changes made by one-shot execs become events (fanotify, real server, real bwrap): exactly the paths a
 * command changed, attributed to it, committed before its exec.completed; the cap and its summary; no
 * event in another namespace; no duplicate for the files API's own writes; nothing for another program's
 * writes in the same tree (the addon remembers such a process as outside the slots).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { isRoot, needsRoot } from '../../../../test/helpers/root.js';
import { client, type Envelope } from './support.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));

const changeTypes = new Set(['file.written', 'file.deleted', 'dir.created', 'dir.deleted', 'files.changed']);

describe.skipIf(!hasBwrap || !isRoot)(`changes made by execs, as fanotify reports them${needsRoot('fanotify')}`, () => {
  let server: StartedServer;

  beforeAll(async () => {
    server = await startServer({ env: { TROVE_CHANGES: 'fanotify', TROVE_EXEC_TIMEOUT_MS: '60000' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('records one event per changed path, attributed to the command, before its exec.completed', async () => {
    const c = client(server, 'chg-basic');
    await c.exec(
      'cd workspace && mkdir -p d && echo one > d/a.txt && echo two > b.txt && rm b.txt && echo old > keep.txt',
    );
    const r = await c.exec(
      'cd workspace; echo new >> keep.txt; echo three > d/c.txt; rm d/a.txt; mkdir e; mv d/c.txt e/c.txt',
    );
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

  it('rm -rf of a 10,000-file tree: the cap, then one summary', async () => {
    const c = client(server, 'chg-rmrf');
    await c.exec(
      'cd workspace && mkdir -p big && cd big && for d in $(seq 1 100); do mkdir d$d; (cd d$d && touch $(seq -f f%g 1 100)); done',
    );
    const r = await c.exec('cd workspace && rm -rf big && echo gone');
    expect(r.stdout).toBe('gone\n');
    const events = await c.events();
    const execId = events.filter((e) => e.type === 'exec.completed')[1]!.data.exec_id;
    const mine = events.filter((e) => e.data.exec_id === execId && changeTypes.has(e.type));
    expect(mine).toHaveLength(1001);
    expect(mine.slice(0, 1000).every((e) => e.type === 'file.deleted' || e.type === 'dir.deleted')).toBe(true);
    expect(mine[1000]!.data).toMatchObject({
      deleted: 10_000,
      dirs_deleted: 101,
      total: 10_101,
      recorded: 1000,
      truncated: true,
      source: 'exec',
    });
    expect(mine[1000]!.data.incomplete).toBeUndefined();
  });

  it("one namespace's command never produces another namespace's events", async () => {
    const a = client(server, 'chg-iso-a');
    const b = client(server, 'chg-iso-b');
    await Promise.all([
      a.exec('cd workspace && for i in $(seq 1 50); do echo a > a$i; done'),
      b.exec('cd workspace && for i in $(seq 1 50); do echo b > b$i; done; mkdir bd'),
    ]);
    const ea = (await a.events()).filter((e) => changeTypes.has(e.type));
    const eb = (await b.events()).filter((e) => changeTypes.has(e.type));
    expect(ea.map((e) => e.data.path)).toEqual(Array.from({ length: 50 }, (_, i) => `workspace/a${i + 1}`));
    expect(eb).toHaveLength(51);
    expect(eb.every((e) => /^workspace\/(b\d+|bd)$/.test(e.data.path as string))).toBe(true);
    for (const e of ea) expect(e.namespace).toBe('chg-iso-a');
    for (const e of eb) expect(e.namespace).toBe('chg-iso-b');
  });

  it("another program writing in a namespace's tree while a command runs there: only the command's changes are recorded", async () => {
    const c = client(server, 'chg-host');
    await c.exec('true');
    const tree = join(server.dataDir, 'workspaces', server.workspaceId, 'namespaces', 'chg-host');
    expect(statSync(tree).isDirectory()).toBe(true);
    // A shell outside every sandbox: 200 writes over about a second (the addon remembers it as in no slot
    // after the first), then it stays alive until it is killed, so none of its records is of a gone process.
    const host = spawn(
      'sh',
      [
        '-c',
        'i=0; while [ $i -lt 200 ]; do echo x > host$((i % 20)).txt; i=$((i + 1)); sleep 0.005; done; exec sleep 60',
      ],
      {
        cwd: tree,
        stdio: 'ignore',
      },
    );
    try {
      const r = await c.exec('cd workspace && for i in $(seq 1 30); do echo c > cmd$i; sleep 0.05; done');
      expect(r.exit_code).toBe(0);
      await c.exec('true'); // the host's last writes are read past by this command's end marker too
    } finally {
      host.kill('SIGKILL');
    }
    const changes = (await c.events()).filter((e) => changeTypes.has(e.type));
    expect(changes.map((e) => [e.type, e.data.path])).toEqual(
      Array.from({ length: 30 }, (_, i) => ['file.written', `workspace/cmd${i + 1}`]),
    );
    expect(readdirSync(tree).filter((n) => n.startsWith('host'))).toHaveLength(20);
  });

  it("the files API's own writes and deletes are recorded once (by the API), never by the tracker", async () => {
    const c = client(server, 'chg-api');
    await c.write('x.txt', 'hello');
    expect(
      (
        await c.raw('/delete', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ path: 'x.txt' }),
        })
      ).status,
    ).toBe(200);
    // Something for the tracker to see after them: its events prove the API's were read past.
    await c.exec('cd workspace && echo after > y.txt');
    const events = await c.events();
    expect(events.map((e) => [e.type, e.data.path ?? null, e.data.source ?? null])).toEqual([
      ['file.written', 'workspace/x.txt', 'upload'],
      ['file.deleted', 'workspace/x.txt', 'api'],
      ['file.written', 'workspace/y.txt', 'exec'],
      ['exec.completed', null, null],
    ]);
  });

  it('the events API and the SSE stream filter on source', async () => {
    const c = client(server, 'chg-filter');
    await c.write('api.txt', 'from the api');
    await c.exec('cd workspace && echo cmd > cmd.txt');
    const fromExec = await c.events('source=exec');
    expect(fromExec.map((e) => e.data.path)).toEqual(['workspace/cmd.txt']);
    const fromApi = await c.events('source=api');
    expect(fromApi.map((e) => e.data.path)).toEqual(['workspace/api.txt']);
    expect((await c.events('source=api,exec')).map((e) => e.data.path)).toEqual([
      'workspace/api.txt',
      'workspace/cmd.txt',
    ]);
    const bad = await c.admin(`/v1/workspaces/${server.workspaceId}/events?source=robot`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { detail: string }).detail).toBe(
      'Invalid source: "robot" (known: exec, api, write, upload; comma-separated)',
    );
    const badStream = await c.admin(`/v1/workspaces/${server.workspaceId}/webhooks/stream?source=robot`);
    expect(badStream.status).toBe(400);

    // SSE: only the command's change arrives, not the API write made while the stream is open.
    const ac = new AbortController();
    const res = await c.admin(`/v1/workspaces/${server.workspaceId}/webhooks/stream?source=exec&namespace=chg-filter`, {
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    const seen: Envelope[] = [];
    let buf = '';
    const next = async (): Promise<Record<string, unknown>> => {
      for (;;) {
        const at = buf.indexOf('\n\n');
        if (at >= 0) {
          const msg = buf.slice(0, at);
          buf = buf.slice(at + 2);
          if (msg.startsWith('data: ')) return JSON.parse(msg.slice(6)) as Record<string, unknown>;
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buf += new TextDecoder().decode(value);
      }
    };
    expect(await next()).toEqual({ type: 'connected' });
    await c.write('api2.txt', 'again');
    await c.exec('cd workspace && echo two > cmd2.txt');
    seen.push((await next()) as unknown as Envelope);
    ac.abort();
    expect(seen.map((e) => [e.type, e.data.path, e.data.source])).toEqual([
      ['file.written', 'workspace/cmd2.txt', 'exec'],
    ]);
  });
});

describe.skipIf(!hasBwrap || !isRoot)(
  `a command creating, modifying and deleting 500 files each, as fanotify reports it${needsRoot('fanotify')}`,
  () => {
    let server: StartedServer;

    beforeAll(async () => {
      // A cap above the 1,501 paths: every change is listed, so the log can be reconciled with the tree.
      server = await startServer({
        env: { TROVE_CHANGES: 'fanotify', TROVE_CHANGES_MAX_PER_COMMAND: '2000', TROVE_EXEC_TIMEOUT_MS: '60000' },
      });
    });
    afterAll(async () => {
      await server?.close();
    });

    /** path → size (-1: a directory) of everything in the namespace, through the files API (a listing holds at most 1,000 entries: one per directory). */
    const tree = async (c: ReturnType<typeof client>) => {
      const out = new Map<string, number>();
      const list = async (dir: string) => {
        const res = await c.raw(`/v1/files?path=${encodeURIComponent(dir)}`);
        if (res.status === 404) return;
        const body = (await res.json()) as {
          entries: Array<{ path: string; is_dir: boolean; size_bytes: number }>;
          truncated: boolean;
        };
        expect(body.truncated).toBe(false);
        for (const e of body.entries) {
          const path = e.path.replace(/\/$/, '');
          out.set(path, e.is_dir ? -1 : e.size_bytes);
          if (e.is_dir) await list(`${path}/`);
        }
      };
      await list('workspace/');
      return out;
    };

    it('the log holds exactly those changes, each attributed to the command, reconciled against the tree', async () => {
      const c = client(server, 'chg-1500');
      await c.exec(
        'cd workspace && mkdir -p old/a old/b && for i in $(seq 1 500); do echo "v1 $i" > old/a/f$i; echo "v1 $i" > old/b/f$i; done',
      );
      const before = await tree(c);
      const r = await c.exec(
        'cd workspace && mkdir new && for i in $(seq 1 500); do echo "n $i" > new/g$i; done; ' +
          'for i in $(seq 1 500); do echo "v2" >> old/a/f$i; done; for i in $(seq 1 500); do rm old/b/f$i; done; echo done',
      );
      expect(r.stdout).toBe('done\n');
      const after = await tree(c);
      const events = await c.events();
      const completed = events.filter((e) => e.type === 'exec.completed');
      const execId = completed[1]!.data.exec_id;
      const mine = events.filter((e) => changeTypes.has(e.type) && e.data.exec_id === execId);
      // Nothing else in the namespace came from that command, and no summary: nothing was cut.
      expect(
        events.filter(
          (e) => changeTypes.has(e.type) && e.data.exec_id !== execId && e.data.exec_id !== completed[0]!.data.exec_id,
        ),
      ).toEqual([]);
      expect(mine.some((e) => e.type === 'files.changed')).toBe(false);

      // The tree's own difference, computed from two listings.
      const expected = new Map<string, string>();
      for (const [path, size] of after) {
        if (!before.has(path)) expected.set(path, size === -1 ? 'dir.created' : 'file.written');
        else if (before.get(path) !== size) expected.set(path, 'file.written');
      }
      for (const [path, size] of before)
        if (!after.has(path)) expected.set(path, size === -1 ? 'dir.deleted' : 'file.deleted');
      // Every file rewritten keeps its size + 3 ("v2\n"), so the listing shows all 500 rewrites.
      expect(expected.size).toBe(1 + 500 + 500 + 500);
      expect(new Map(mine.map((e) => [e.data.path as string, e.type]))).toEqual(expected);
      expect(mine).toHaveLength(expected.size); // one event per path
      for (const e of mine) {
        expect(e.data.source).toBe('exec');
        if (e.type === 'file.written') expect(e.data.size_bytes).toBe(after.get(e.data.path as string));
      }
      // In the order they happened: the new directory and its files, the rewrites, then the removals.
      expect(mine[0]!.data.path).toBe('workspace/new');
      expect(mine[1]!.data.path).toBe('workspace/new/g1');
      expect(mine[501]!.data.path).toBe('workspace/old/a/f1');
      expect(mine[1001]).toMatchObject({ type: 'file.deleted', data: { path: 'workspace/old/b/f1' } });
      // And all of it before the command's exec.completed.
      expect(events.indexOf(mine.at(-1)!)).toBeLessThan(events.indexOf(completed[1]!));
    });
  },
);
