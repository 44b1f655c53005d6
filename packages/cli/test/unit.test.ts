/** Pure pieces of the CLI: time and size formatting, --since, config precedence, tables, colour, signing, host paths. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { verifyWebhook } from 'trove-sdk';
import { formatTimestamp } from '../src/output/time.js';
import { formatBytes, maskKey } from '../src/output/format.js';
import { parseSince } from '../src/parse/since.js';
import { resolveConfig } from '../src/config/resolve.js';
import { renderTable } from '../src/output/table.js';
import { colorEnabled, palette } from '../src/output/color.js';
import { toWire } from '../src/output/json.js';
import { newSigningSecret, signatureHeaders } from '../src/webhooks/sign.js';
import { isLocalHost, parseLocalTarget } from '../src/webhooks/target.js';
import { buildEntry, defaultConfigPath, sameJson } from '../src/mcp-hosts/hosts.js';
import { relativePath, remoteBasename, workspacePath } from '../src/paths.js';
import { CLI_VERSION } from '../src/version.js';
import { NoProfileError } from '../src/errors.js';

describe('formatTimestamp (local time)', () => {
  const now = new Date(2026, 10, 25, 15, 30, 0);
  it('shows HH:MM:SS for today and MM-DD HH:MM:SS for older days', () => {
    expect(formatTimestamp(new Date(2026, 10, 25, 9, 5, 7).toISOString(), now)).toBe('09:05:07');
    expect(formatTimestamp(new Date(2026, 10, 25, 0, 0, 0).toISOString(), now)).toBe('00:00:00');
    expect(formatTimestamp(new Date(2026, 10, 24, 23, 59, 59).toISOString(), now)).toBe('11-24 23:59:59');
    expect(formatTimestamp(new Date(2025, 0, 2, 3, 4, 5).toISOString(), now)).toBe('01-02 03:04:05');
  });
  it('passes odd input through', () => {
    expect(formatTimestamp(null, now)).toBe('-');
    expect(formatTimestamp('not a time', now)).toBe('not a time');
  });
});

describe('parseSince', () => {
  const now = new Date('2026-11-25T12:00:00.000Z');
  it('reads durations back from now', () => {
    expect(parseSince('90s', now)).toBe('2026-11-25T11:58:30.000Z');
    expect(parseSince('1h30m', now)).toBe('2026-11-25T10:30:00.000Z');
    expect(parseSince('2d', now)).toBe('2026-11-23T12:00:00.000Z');
    expect(parseSince('1w', now)).toBe('2026-11-18T12:00:00.000Z');
    expect(parseSince('1H', now)).toBe('2026-11-25T11:00:00.000Z');
  });
  it('reads ISO times (offsets normalised to UTC)', () => {
    expect(parseSince('2026-11-25T10:00:00Z', now)).toBe('2026-11-25T10:00:00.000Z');
    expect(parseSince('2026-11-25T10:00:00.123+02:00', now)).toBe('2026-11-25T08:00:00.123Z');
    expect(parseSince('2026-11-20', now)).toBe('2026-11-20T00:00:00.000Z');
  });
  it('rejects anything else with a usage hint', () => {
    for (const bad of ['yesterday', '1x', '', '10', 'h1', '2026-13-45T00:00:00Z']) {
      expect(() => parseSince(bad, now), bad).toThrow(/--since/);
    }
  });
});

describe('formatBytes and maskKey', () => {
  it('formats sizes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(300 * 1024)).toBe('300 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB');
    expect(formatBytes(null)).toBe('-');
  });
  it('masks keys as the first 14 characters, an ellipsis and the last 4', () => {
    expect(maskKey('trove-sk-abcdefghijklmnopqrstuvwxyz')).toBe('trove-sk-abcde…wxyz');
    expect(maskKey('short')).toBe('shor…');
  });
});

describe('resolveConfig precedence', () => {
  const file = {
    profiles: {
      default: { api_key: 'trove-sk-default', workspace_id: 'ws-d', base_url: 'http://d/', namespace: 'pd' },
      work: { api_key: 'trove-sk-work', workspace_id: 'ws-w', base_url: null, namespace: null },
      broken: { workspace_id: 'ws-x' } as never,
    },
  };
  const base = { file, configPath: '/h/.trove/config.json' };
  it('uses the default profile without flags or environment', () => {
    expect(resolveConfig({ ...base, opts: {}, env: {} })).toEqual({
      source: 'profile',
      profile: 'default',
      apiKey: 'trove-sk-default',
      workspaceId: 'ws-d',
      baseUrl: 'http://d',
      namespace: 'pd',
      configPath: '/h/.trove/config.json',
    });
  });
  it('the environment beats the profile; flags beat both', () => {
    const env = {
      TROVE_API_KEY: 'trove-sk-env',
      TROVE_WORKSPACE_ID: 'ws-e',
      TROVE_NAMESPACE: 'ne',
      TROVE_BASE_URL: 'http://e',
    };
    expect(resolveConfig({ ...base, opts: {}, env })).toMatchObject({
      source: 'env',
      apiKey: 'trove-sk-env',
      workspaceId: 'ws-e',
      namespace: 'ne',
      baseUrl: 'http://e',
    });
    expect(resolveConfig({ ...base, opts: { namespace: 'flag', baseUrl: 'http://f' }, env })).toMatchObject({
      namespace: 'flag',
      baseUrl: 'http://f',
    });
  });
  it('--profile ignores the environment entirely', () => {
    const env = { TROVE_API_KEY: 'trove-sk-env', TROVE_NAMESPACE: 'ne', TROVE_BASE_URL: 'http://e' };
    expect(resolveConfig({ ...base, opts: { profile: 'work' }, env })).toMatchObject({
      source: 'profile',
      apiKey: 'trove-sk-work',
      namespace: null,
      baseUrl: 'http://127.0.0.1:8080',
    });
  });
  it('TROVE_PROFILE picks the profile when no key is in the environment', () => {
    expect(resolveConfig({ ...base, opts: {}, env: { TROVE_PROFILE: 'work' } }).apiKey).toBe('trove-sk-work');
  });
  it('missing or unusable profiles are NoProfileError (exit 3)', () => {
    expect(() => resolveConfig({ ...base, opts: { profile: 'nope' }, env: {} })).toThrow(NoProfileError);
    expect(() => resolveConfig({ ...base, opts: { profile: 'broken' }, env: {} })).toThrow(/no profile named "broken"/);
    const err = (() => {
      try {
        resolveConfig({ file: { profiles: {} }, configPath: '/x', opts: {}, env: {} });
      } catch (e) {
        return e as NoProfileError;
      }
    })();
    expect(err?.exitCode).toBe(3);
    expect(err?.message).toBe('not logged in');
  });
});

describe('tables, colour and JSON', () => {
  const plain = palette(false);
  it('pads columns on a terminal and prints tab-separated rows without a header otherwise', () => {
    const rows = [
      ['a', 'bb', 'c'],
      ['dddd', 'e', 'f'],
    ];
    expect(renderTable(rows, { header: ['X', 'Y', 'Z'], tty: true, palette: plain })).toBe(
      'X     Y   Z\na     bb  c\ndddd  e   f\n',
    );
    expect(renderTable(rows, { header: ['X', 'Y', 'Z'], tty: false, palette: plain })).toBe('a\tbb\tc\ndddd\te\tf\n');
  });
  it('ignores colour codes when measuring', () => {
    const c = palette(true);
    expect(renderTable([[c.red('ab'), 'x']], { header: ['H', 'I'], tty: true, palette: plain })).toBe(
      `H   I\n${c.red('ab')}  x\n`,
    );
  });
  it('colours only terminals, and never with NO_COLOR or TERM=dumb; FORCE_COLOR overrides', () => {
    expect(colorEnabled({ isTTY: true }, {})).toBe(true);
    expect(colorEnabled({ isTTY: false }, {})).toBe(false);
    expect(colorEnabled({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled({ isTTY: true }, { NO_COLOR: '' })).toBe(true);
    expect(colorEnabled({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(colorEnabled({ isTTY: false }, { FORCE_COLOR: '1' })).toBe(true);
    expect(palette(true).red('x')).toBe('\x1b[31mx\x1b[39m');
    expect(palette(false).red('x')).toBe('x');
  });
  it('--json restores the wire’s snake_case keys', () => {
    expect(toWire({ sizeBytes: 1, nested: [{ modifiedAt: 'x', isDir: false }], apiVersion: '2026-04-30' })).toEqual({
      size_bytes: 1,
      nested: [{ modified_at: 'x', is_dir: false }],
      api_version: '2026-04-30',
    });
  });
});

describe('webhooks listen: signing and targets', () => {
  it('signs exactly like the server, so the SDK’s verifyWebhook accepts it', () => {
    const secret = newSigningSecret();
    expect(secret).toMatch(/^trove-whsec-[A-Za-z0-9]{40}$/);
    const body = JSON.stringify({
      id: 'evt-1',
      event_id: 'evt-1',
      type: 'file.deleted',
      api_version: '2026-04-30',
      workspace_id: 'ws-1',
      namespace: 'a',
      created_at: '2026-11-25T10:00:00.000Z',
      data: { path: 'workspace/x' },
    });
    const headers = signatureHeaders({ secret, body, eventId: 'evt-1', timestamp: Math.floor(Date.now() / 1000) });
    const event = verifyWebhook({ secret, body, signatureHeader: headers['x-trove-signature']! });
    expect(event.type).toBe('file.deleted');
    expect(() =>
      verifyWebhook({ secret: secret + 'x', body, signatureHeader: headers['x-trove-signature']! }),
    ).toThrow();
    expect(headers['webhook-id']).toBe('evt-1');
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
  });
  it('forwards to this machine only', () => {
    for (const h of ['localhost', '127.0.0.1', '127.1.2.3', '[::1]', 'api.localhost'])
      expect(isLocalHost(h), h).toBe(true);
    for (const h of ['example.com', '10.0.0.1', '192.168.1.1', '0.0.0.0', 'localhost.evil.com', '[::2]'])
      expect(isLocalHost(h), h).toBe(false);
    expect(parseLocalTarget('localhost:3000/hook').href).toBe('http://localhost:3000/hook');
    expect(() => parseLocalTarget('ftp://localhost/x')).toThrow(/only http/);
    expect(() => parseLocalTarget('http://example.com/x')).toThrow(/not this machine/);
  });
});

describe('MCP host entries', () => {
  it('knows each host’s config file', () => {
    const io = { home: '/home/u', env: {} };
    expect(defaultConfigPath('claude-desktop', io, 'darwin')).toBe(
      '/home/u/Library/Application Support/Claude/claude_desktop_config.json',
    );
    expect(defaultConfigPath('claude-desktop', io, 'linux')).toBe('/home/u/.config/Claude/claude_desktop_config.json');
    expect(defaultConfigPath('claude-desktop', { home: '/home/u', env: { XDG_CONFIG_HOME: '/xdg' } }, 'linux')).toBe(
      '/xdg/Claude/claude_desktop_config.json',
    );
    expect(defaultConfigPath('cursor', io)).toBe('/home/u/.cursor/mcp.json');
    expect(defaultConfigPath('claude-code', io)).toBe('/home/u/.claude.json');
  });
  it('builds the entry and compares JSON structurally', () => {
    const e = buildEntry('claude-code', { nodePath: '/n', cliPath: '/c', profile: 'p', namespace: 'ns' });
    expect(e).toEqual({
      type: 'stdio',
      command: '/n',
      args: ['/c', 'mcp', 'serve', '--profile', 'p', '--namespace', 'ns'],
    });
    expect(sameJson({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
  });
});

describe('paths and version', () => {
  it('normalises remote paths like the protocol', () => {
    expect(relativePath('/workspace/a/b.txt')).toBe('a/b.txt');
    expect(relativePath('workspace')).toBe('');
    expect(workspacePath('a.txt')).toBe('workspace/a.txt');
    expect(remoteBasename('workspace/a/b.txt')).toBe('b.txt');
    expect(remoteBasename('workspace/')).toBe('');
  });
  it('CLI_VERSION matches package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(CLI_VERSION).toBe(pkg.version);
  });
});

describe('start-up stays fast', () => {
  // `trove --help` must load only commander: every command module, the SDK and the MCP SDK are
  // imported lazily by the action that needs them. Checked on the built files the binary runs.
  const staticImports = (file: string) =>
    [
      ...readFileSync(new URL(`../dist/${file}`, import.meta.url), 'utf8').matchAll(
        /^import\s+(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]/gm,
      ),
    ].map((m) => m[1]);
  it('bin.js and program.js import nothing heavy at load time', () => {
    expect(staticImports('bin.js').sort()).toEqual([
      './errors.js',
      './output/color.js',
      './program.js',
      'node:fs',
      'node:os',
      'node:url',
    ]);
    expect(staticImports('output/color.js')).toEqual([]);
    expect(staticImports('program.js').sort()).toEqual(['./version.js', 'commander']);
    expect(staticImports('errors.js')).toEqual([]);
  });
});

describe('doctor: clock skew from the Date header', () => {
  it('counts only what lies beyond the header’s one-second resolution and the round trip', async () => {
    const { clockSkewSeconds } = await import('../src/commands/auth/doctor.js');
    const date = 'Wed, 25 Nov 2026 10:00:00 GMT';
    const server = Date.parse(date);
    expect(clockSkewSeconds(server + 100, server + 300, date)).toBe(0);
    expect(clockSkewSeconds(server + 900, server + 999, date)).toBe(0);
    // Ten seconds ahead, with a 200 ms round trip: 10.2 - 0.5 offset, minus 0.6 uncertainty.
    expect(clockSkewSeconds(server + 10_100, server + 10_300, date)).toBeCloseTo(9.1, 5);
    expect(clockSkewSeconds(server - 10_000, server - 9_800, date)).toBeCloseTo(-9.8, 5);
    expect(clockSkewSeconds(0, 1, null)).toBeNull();
    expect(clockSkewSeconds(0, 1, 'garbage')).toBeNull();
  });
});
