/**
 * Regression: a first exec's change was lost when the addon's reader read the command's fork reports only
 * after its trove-enter, supervisor and shell were all gone (40 concurrent first execs on 2 busy cores).
 * The shell's parent was then of an unknown slot, and the walk up the fork reports met trove-enter, which
 * was forked outside every slot (it joins its slot after its fork): the record was dropped as another
 * program's. Here the reader thread is frozen (cgroup v1 freezer, one thread) from before the command starts
 * until its trove-enter has exited, so its reports are always read late: no timing luck either way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { isRoot, needsRoot } from '../../../../test/helpers/root.js';
import { client } from './support.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));
/** cgroup v2 has no per-thread freezer: the reader cannot be stopped alone there. */
const FREEZER = '/sys/fs/cgroup/freezer';
const hasFreezer = existsSync(join(FREEZER, 'tasks'));

const changeTypes = new Set(['file.written', 'file.deleted', 'dir.created', 'dir.deleted', 'files.changed']);

/** The addon's fanotify reader thread of process `pid` (named by pthread_setname_np). */
function readerThread(pid: number): number {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === 'trove-changes') return Number(tid);
  }
  throw new Error('no trove-changes thread');
}

/** Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1], starttime [19]); null: gone. */
function statOf(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

async function until<T>(
  what: string,
  probe: () => T | null | undefined | false | Promise<T | false>,
  ms = 30_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Freezes one thread in a freezer cgroup of its own; thaw() puts it back. */
async function freezeThread(tid: number): Promise<{ thaw(): void }> {
  const dir = join(FREEZER, `trove-test-reader-${process.pid}-${tid}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'tasks'), String(tid));
  writeFileSync(join(dir, 'freezer.state'), 'FROZEN');
  await until('the reader to freeze', () => readFileSync(join(dir, 'freezer.state'), 'utf8').trim() === 'FROZEN');
  let thawed = false;
  return {
    thaw() {
      if (thawed) return;
      thawed = true;
      writeFileSync(join(dir, 'freezer.state'), 'THAWED');
      writeFileSync(join(FREEZER, 'tasks'), String(tid));
      rmdirSync(dir);
    },
  };
}

describe.skipIf(!hasBwrap || !isRoot || !hasFreezer)(
  `a first exec whose processes are gone before the reader reads${needsRoot('fanotify and the cgroup v1 freezer')}`,
  () => {
    let server: StartedServer;

    beforeAll(async () => {
      server = await startServer({ env: { TROVE_CHANGES: 'fanotify', TROVE_EXEC_TIMEOUT_MS: '60000' } });
      // The first exec claims a pre-made sandbox (its spare's slot renamed from `pool-<n>` to the namespace's
      // group after the addon saw the spare's processes): the pool fills first.
      await until('the sandbox pool', async () => {
        const res = await fetch(`${server.baseUrl}/v1/admin/health`, {
          headers: { authorization: `Bearer ${server.adminKey}` },
        });
        const pool = ((await res.json()) as { sandbox_pool: { size: number; ready: number } }).sandbox_pool;
        return pool.size > 0 && pool.ready === pool.size;
      });
    });
    afterAll(async () => {
      await server?.close();
    });

    it("still records the command's change (attributed by its namespace)", async () => {
      const c = client(server, 'chg-first-behind');
      const tree = join(server.dataDir, 'workspaces', server.workspaceId, 'namespaces', 'chg-first-behind');
      const token = `first-behind-${Date.now().toString(36)}`;
      const frozen = await freezeThread(readerThread(server.proc.pid!));
      let running: ReturnType<typeof c.exec> | undefined;
      try {
        // The shell waits for `go` so that its trove-enter is found while alive; then all of them end.
        running = c.exec(`echo x > workspace/f.txt; while [ ! -e workspace/go ]; do sleep 0.01; done # ${token}`);
        running.catch(() => {});
        let shell = await until('the command', () => {
          for (const name of readdirSync('/proc')) {
            const pid = Number(name);
            if (pid > 0 && cmdline(pid).includes(token)) return pid;
          }
          return null;
        });
        while (cmdline(Number(statOf(shell)![1])).includes(token)) shell = Number(statOf(shell)![1]);
        // Up from the command's shell: the supervisor, then trove-enter (the launcher's child).
        let enter = Number(statOf(shell)![1]);
        expect(comm(enter)).toBe('trove-enter');
        const above = Number(statOf(enter)![1]);
        if (comm(above) === 'trove-enter') enter = above;
        const started = statOf(enter)![19];
        await until('the write', () => existsSync(join(tree, 'f.txt')));
        await c.write('go', '');
        await until('trove-enter to end', () => statOf(enter)?.[19] !== started);
      } finally {
        frozen.thaw();
      }
      const r = await running;
      expect(r.exit_code).toBe(0);
      const events = await c.events();
      const completed = events.filter((e) => e.type === 'exec.completed');
      expect(completed).toHaveLength(1);
      const mine = events.filter((e) => e.data.exec_id === completed[0]!.data.exec_id && changeTypes.has(e.type));
      expect(mine.map((e) => [e.type, e.data.path, e.data.source])).toEqual([
        ['file.written', 'workspace/f.txt', 'exec'],
      ]);
    });
  },
);
