/** tail (live, long-poll) and events list against a real server. */
import { describe, expect, it } from 'vitest';
import { api } from '../../../test/helpers/server.js';
import { makeHome, trove } from './helpers/cli.js';
import { useLoggedInCli } from './helpers/session.js';

const session = useLoggedInCli({ namespace: 'ev' });

const write = (ns: string, path: string, content: string) =>
  api(
    session.server,
    session.server.runtimeKey,
    ns,
  )('/write', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path, content }),
  }).then((r) => {
    if (!r.ok) throw new Error(`write failed: ${r.status}`);
  });

describe('tail', () => {
  it('streams new events as JSON lines, filtered by type and namespace, and exits 130 on Ctrl-C', async () => {
    const started = new Date(Date.now() - 1000).toISOString();
    await write('ev', 'before.txt', 'x');
    // --since replays what happened since the test began, so the first line proves the tail is live
    // without racing its start; the second event is one that happens while it waits.
    const tail = session.start(['tail', '--json', '--since', started, '-t', 'file.written', '-n', 'ev']);
    await tail.waitFor((out) => out.includes('workspace/before.txt'));
    await write('other', 'elsewhere.txt', 'filtered out by namespace');
    await api(
      session.server,
      session.server.runtimeKey,
      'ev',
    )('/delete', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'before.txt' }),
    });
    await write('ev', 'live.txt', 'hello');
    await tail.waitFor((out) => out.includes('workspace/live.txt'));
    tail.proc.kill('SIGINT');
    const result = await tail.exited;
    expect(result.code).toBe(130);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((e) => e.data.path)).toEqual(['workspace/before.txt', 'workspace/live.txt']);
    for (const e of lines) {
      expect(e).toMatchObject({
        type: 'file.written',
        namespace: 'ev',
        api_version: '2026-04-30',
        workspace_id: session.server.workspaceId,
      });
      expect(e.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(e.data.size_bytes).toBeTypeOf('number');
    }
  });

  it('prints one line per event with a local HH:MM:SS time, and -v adds the data', async () => {
    const started = new Date(Date.now() - 1000).toISOString();
    await write('ev', 'verbose.txt', 'abc');
    const tail = session.start(['tail', '-v', '--since', started, '-t', 'file.written']);
    await tail.waitFor((out) => out.includes('"size_bytes": 3'));
    tail.proc.kill('SIGINT');
    const { stdout, code } = await tail.exited;
    expect(code).toBe(130);
    expect(stdout).toMatch(/^\d\d:\d\d:\d\d {2}file\.written +ev +workspace\/verbose\.txt \(3 B, write\)$/m);
  });

  it('a bad key exits 2 instead of waiting', async () => {
    const r = await trove(['tail'], {
      home: makeHome(),
      env: { TROVE_API_KEY: 'trove-sk-bad', TROVE_BASE_URL: session.server.baseUrl },
    });
    expect(r.code).toBe(2);
  });
});

describe('events list', () => {
  it('lists newest first with type, namespace and limit filters', async () => {
    await write('list-a', 'one.txt', '1');
    await write('list-a', 'two.txt', '22');
    await write('list-b', 'three.txt', '333');
    const json = JSON.parse(
      await session.ok(['events', 'list', '--json', '-t', 'file.written', '-n', 'list-a', '--since', '10m']),
    );
    expect(json.events.map((e: { data: { path: string } }) => e.data.path)).toEqual([
      'workspace/two.txt',
      'workspace/one.txt',
    ]);
    expect(json.next_cursor).toBeNull();

    const limited = JSON.parse(await session.ok(['events', 'list', '--json', '--limit', '1', '-t', 'file.written']));
    expect(limited.events).toHaveLength(1);
    expect(limited.events[0].data.path).toBe('workspace/three.txt');
    expect(limited.next_cursor).not.toBeNull();

    const text = await session.ok(['events', 'list', '-t', 'file.written', '-n', 'list-b']);
    expect(text).toMatch(/^\d\d:\d\d:\d\d\tfile\.written\tlist-b\tworkspace\/three\.txt \(3 B, write\)\n$/);
  });

  it('--limit caps the list and --all returns every matching event', async () => {
    for (let i = 0; i < 5; i++) await write('paged', `p${i}.txt`, 'x');
    const some = JSON.parse(await session.ok(['events', 'list', '--json', '-n', 'paged', '--limit', '3']));
    expect(some.events).toHaveLength(3);
    const all = JSON.parse(await session.ok(['events', 'list', '--json', '-n', 'paged', '--all']));
    expect(all.events.map((e: { data: { path: string } }) => e.data.path)).toEqual(
      [4, 3, 2, 1, 0].map((i) => `workspace/p${i}.txt`),
    );
  });

  it('--since accepts durations and ISO times, and rejects anything else', async () => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect(JSON.parse(await session.ok(['events', 'list', '--json', '--since', future])).events).toEqual([]);
    expect(
      JSON.parse(await session.ok(['events', 'list', '--json', '--since', '1h30m'])).events.length,
    ).toBeGreaterThan(0);
    const bad = await session.run(['events', 'list', '--since', 'yesterday']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--since: cannot read "yesterday"');
    expect(bad.stderr).toContain('1h30m');
  });

  it('--source keeps the events made by that actor (exec: commands; api: the files API), and rejects unknown ones', async () => {
    await write('src', 'by-api.txt', 'x');
    const ns = api(session.server, session.server.runtimeKey, 'src');
    const r = await ns('/v1/exec', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'echo c > workspace/by-cmd.txt' }),
    });
    expect(r.status).toBe(200);
    const execOnly = JSON.parse(await session.ok(['events', 'list', '--json', '-n', 'src', '--source', 'exec']));
    // Without root (no fanotify) the scan fallback records it too.
    expect(
      execOnly.events.map((e: { data: { path: string; source: string } }) => [e.data.path, e.data.source]),
    ).toEqual([['workspace/by-cmd.txt', 'exec']]);
    const apiOnly = JSON.parse(await session.ok(['events', 'list', '--json', '-n', 'src', '--source', 'api']));
    expect(apiOnly.events.map((e: { data: { path: string } }) => e.data.path)).toEqual(['workspace/by-api.txt']);
    const text = await session.ok(['events', 'list', '-n', 'src', '--source', 'exec']);
    expect(text).toMatch(
      /^\d\d:\d\d:\d\d\tfile\.written\tsrc\tworkspace\/by-cmd\.txt \(2 B, exec, exec-[0-9a-f]{24}\)\n$/,
    );
    const bad = await session.run(['events', 'list', '--source', 'robot']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--source: unknown source "robot" (use exec, api, write, upload');
  });
});
