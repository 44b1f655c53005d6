/** `trove mcp install|status|uninstall`: safe edits of agent hosts' config files (backup, merge, idempotent, dry run). */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupHomes, cliBin, makeHome, trove, troveOk } from './helpers/cli.js';

// Every step spawns the CLI (a fresh node process); generous, so a busy machine does not fail the run.
vi.setConfig({ testTimeout: 240_000 });

afterAll(() => cleanupHomes());

/** A HOME with a saved profile (install needs credentials to point the entry at; no server is contacted). */
function homeWithProfile(): string {
  const home = makeHome();
  mkdirSync(join(home, '.trove'), { mode: 0o700 });
  writeFileSync(
    join(home, '.trove', 'config.json'),
    JSON.stringify({
      profiles: {
        default: { api_key: 'trove-sk-test', workspace_id: 'ws-1', base_url: 'http://127.0.0.1:9', namespace: 'agent' },
      },
    }),
    { mode: 0o600 },
  );
  return home;
}

const read = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

describe('mcp install', () => {
  it('claude-desktop: creates the file with an entry that runs this CLI, then is idempotent', async () => {
    const home = homeWithProfile();
    const path = join(home, '.config', 'Claude', 'claude_desktop_config.json');
    const first = await trove(['mcp', 'install', '--client', 'claude-desktop'], { home });
    expect(first.code).toBe(0);
    expect(first.stderr).toContain('Installed "trove" in Claude Desktop');
    expect(read(path)).toEqual({
      mcpServers: { trove: { command: process.execPath, args: [cliBin, 'mcp', 'serve', '--profile', 'default'] } },
    });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = JSON.parse(await troveOk(['mcp', 'install', '--client', 'claude-desktop', '--json'], { home }));
    expect(again).toMatchObject({ action: 'none', changed: false, backup: null });
    // No backup for a file that did not exist, none for a no-op.
    expect(readdirSync(join(home, '.config', 'Claude'))).toEqual(['claude_desktop_config.json']);
  });

  it('cursor: merges into an existing file, keeps other servers and settings, backs the old file up', async () => {
    const home = homeWithProfile();
    const dir = join(home, '.cursor');
    mkdirSync(dir);
    const path = join(dir, 'mcp.json');
    const original = { theme: 'dark', mcpServers: { other: { command: 'other-server', args: ['--x'] } } };
    writeFileSync(path, JSON.stringify(original, null, 4), { mode: 0o644 });
    const res = JSON.parse(await troveOk(['mcp', 'install', '--client', 'cursor', '-n', 'ns2', '--json'], { home }));
    expect(res).toMatchObject({ client: 'cursor', config_path: path, action: 'add', changed: true });
    const doc = read(path);
    expect(doc.theme).toBe('dark');
    expect(doc.mcpServers.other).toEqual(original.mcpServers.other);
    expect(doc.mcpServers.trove.args).toEqual([cliBin, 'mcp', 'serve', '--profile', 'default', '--namespace', 'ns2']);
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(read(res.backup)).toEqual(original);
    // A changed entry (different namespace) is updated in place, with another backup.
    const upd = JSON.parse(await troveOk(['mcp', 'install', '--client', 'cursor', '--json'], { home }));
    expect(upd.action).toBe('update');
    expect(read(path).mcpServers.trove.args).toEqual([cliBin, 'mcp', 'serve', '--profile', 'default']);
    expect(readdirSync(dir).filter((f) => f.startsWith('mcp.json.bak-'))).toHaveLength(2);
  });

  it('claude-code: writes a stdio entry into ~/.claude.json; --dry-run changes nothing', async () => {
    const home = homeWithProfile();
    const path = join(home, '.claude.json');
    writeFileSync(path, JSON.stringify({ numStartups: 3, projects: { '/x': { allowedTools: [] } } }));
    const dry = await trove(['mcp', 'install', '--client', 'claude-code', '--dry-run'], { home });
    expect(dry.code).toBe(0);
    expect(dry.stderr).toContain(`Would add "trove" in ${path}`);
    expect(JSON.parse(dry.stdout).mcpServers.trove).toMatchObject({ type: 'stdio', command: process.execPath });
    expect(read(path)).toEqual({ numStartups: 3, projects: { '/x': { allowedTools: [] } } });
    await troveOk(['mcp', 'install', '--client', 'claude-code'], { home });
    const doc = read(path);
    expect(doc.numStartups).toBe(3);
    expect(doc.mcpServers.trove).toEqual({
      type: 'stdio',
      command: process.execPath,
      args: [cliBin, 'mcp', 'serve', '--profile', 'default'],
    });
  });

  it('credentials from the environment are carried in env; no credentials at all exits 3', async () => {
    const home = makeHome();
    const path = join(home, 'custom.json');
    const env = { TROVE_API_KEY: 'trove-sk-envkey', TROVE_BASE_URL: 'http://127.0.0.1:9', TROVE_NAMESPACE: 'e' };
    const r = await trove(['mcp', 'install', '--client', 'cursor', '--config-path', path], { home, env });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning:');
    expect(read(path).mcpServers.trove).toEqual({
      command: process.execPath,
      args: [cliBin, 'mcp', 'serve'],
      env: { TROVE_API_KEY: 'trove-sk-envkey', TROVE_BASE_URL: 'http://127.0.0.1:9', TROVE_NAMESPACE: 'e' },
    });
    expect((await trove(['mcp', 'install', '--client', 'cursor'], { home: makeHome() })).code).toBe(3);
  });

  it('refuses to touch a file that is not valid JSON', async () => {
    const home = homeWithProfile();
    const path = join(home, 'broken.json');
    writeFileSync(path, '{ "mcpServers": { oops');
    const r = await trove(['mcp', 'install', '--client', 'cursor', '--config-path', path], { home });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is not valid JSON');
    expect(readFileSync(path, 'utf8')).toBe('{ "mcpServers": { oops');
  });

  it('--client is required and checked', async () => {
    const home = homeWithProfile();
    expect((await trove(['mcp', 'install'], { home })).code).toBe(1);
    const bad = await trove(['mcp', 'install', '--client', 'vim'], { home });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('claude-desktop, cursor, claude-code');
  });
});

describe('mcp status and uninstall', () => {
  it('reports each host, then uninstall removes only our entry (idempotently)', async () => {
    const home = homeWithProfile();
    await troveOk(['mcp', 'install', '--client', 'cursor'], { home });
    const path = join(home, '.cursor', 'mcp.json');
    const doc = read(path);
    doc.mcpServers.keep = { command: 'keep' };
    writeFileSync(path, JSON.stringify(doc));

    const status = JSON.parse(await troveOk(['mcp', 'status', '--json'], { home })).clients;
    expect(
      status.map((s: { client: string; installed: boolean; current: boolean | null }) => [
        s.client,
        s.installed,
        s.current,
      ]),
    ).toEqual([
      ['claude-desktop', false, null],
      ['cursor', true, true],
      ['claude-code', false, null],
    ]);
    const table = await troveOk(['mcp', 'status', '--client', 'cursor'], { home });
    expect(table).toBe(`cursor\tinstalled\t${path}\n`);

    const dry = await trove(['mcp', 'uninstall', '--client', 'cursor', '--dry-run'], { home });
    expect(dry.stderr).toContain('Would remove "trove"');
    expect(read(path).mcpServers.trove).toBeDefined();

    const un = JSON.parse(await troveOk(['mcp', 'uninstall', '--client', 'cursor', '--json'], { home }));
    expect(un).toMatchObject({ action: 'remove', changed: true });
    expect(read(path).mcpServers).toEqual({ keep: { command: 'keep' } });
    expect(read(un.backup).mcpServers.trove).toBeDefined();
    const again = JSON.parse(await troveOk(['mcp', 'uninstall', '--client', 'cursor', '--json'], { home }));
    expect(again).toMatchObject({ action: 'none', changed: false });
  });
});
