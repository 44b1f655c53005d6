/** login, logout, whoami, doctor and the exit codes of auth/config/network failures, against a real server. */
import { describe, expect, it } from 'vitest';
import { readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { login, makeHome, trove, troveOk } from './helpers/cli.js';
import { useServer } from './helpers/session.js';

const session = useServer();

function readConfig(home: string) {
  return JSON.parse(readFileSync(join(home, '.trove', 'config.json'), 'utf8'));
}

describe('login', () => {
  it('checks the key, saves the profile 0600 and shows the key only masked', async () => {
    const home = makeHome();
    const r = await trove(
      ['login', '--api-key', session.server.runtimeKey, '--base-url', session.server.baseUrl, '-n', 'dev'],
      { home },
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(session.server.workspaceId);
    expect(r.stdout + r.stderr).not.toContain(session.server.runtimeKey);
    expect(r.stderr).toContain(`${session.server.runtimeKey.slice(0, 14)}…${session.server.runtimeKey.slice(-4)}`);
    expect(readConfig(home)).toEqual({
      profiles: {
        default: {
          api_key: session.server.runtimeKey,
          workspace_id: session.server.workspaceId,
          base_url: session.server.baseUrl,
          namespace: 'dev',
        },
      },
    });
    expect(statSync(join(home, '.trove', 'config.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, '.trove')).mode & 0o777).toBe(0o700);
  });

  it('keeps keys it does not know (shared with the Python CLI) and other profiles', async () => {
    const home = makeHome();
    mkdirSync(join(home, '.trove'));
    writeFileSync(
      join(home, '.trove', 'config.json'),
      JSON.stringify({
        active: 'default',
        telemetry: false,
        profiles: {
          other: { api_key: 'trove-sk-x', workspace_id: 'ws-1', base_url: 'http://x', namespace: null, color: 'blue' },
        },
      }),
    );
    await login(home, session.server.baseUrl, session.server.adminKey, ['--save-as', 'admin']);
    const cfg = readConfig(home);
    expect(cfg.active).toBe('default');
    expect(cfg.telemetry).toBe(false);
    expect(cfg.profiles.other).toEqual({
      api_key: 'trove-sk-x',
      workspace_id: 'ws-1',
      base_url: 'http://x',
      namespace: null,
      color: 'blue',
    });
    expect(cfg.profiles.admin).toMatchObject({
      api_key: session.server.adminKey,
      workspace_id: session.server.workspaceId,
      namespace: null,
    });
  });

  it('--api-key - reads the key from stdin; --json reports the login', async () => {
    const home = makeHome();
    const r = await trove(['login', '--api-key', '-', '--base-url', session.server.baseUrl, '--json'], {
      home,
      input: session.server.adminKey + '\n',
    });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      profile: 'default',
      workspace_id: session.server.workspaceId,
      scope: 'admin',
      namespace_lock: null,
    });
    expect(out.api_key).not.toBe(session.server.adminKey);
  });

  it('a bad key exits 2 and saves nothing', async () => {
    const home = makeHome();
    const r = await trove(['login', '--api-key', 'trove-sk-nope', '--base-url', session.server.baseUrl], { home });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: Invalid API key/m);
    expect(r.stderr).toMatch(/^hint: /m);
    expect(() => readConfig(home)).toThrow();
  });

  it('a namespace other than the key’s lock exits 2', async () => {
    const home = makeHome();
    const admin = makeHome();
    await login(admin, session.server.baseUrl, session.server.adminKey);
    const key = (await troveOk(['keys', 'create', 'locked', '-n', 'ns-a'], { home: admin })).trim();
    const r = await trove(['login', '--api-key', key, '--base-url', session.server.baseUrl, '-n', 'ns-b'], { home });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('locked to namespace "ns-a"');
    // Without -n the lock becomes the profile's namespace.
    await login(home, session.server.baseUrl, key);
    expect(readConfig(home).profiles.default.namespace).toBe('ns-a');
  });

  it('without a key and without a terminal is a usage error', async () => {
    const r = await trove(['login', '--base-url', session.server.baseUrl], { home: makeHome() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: no API key given');
  });
});

describe('whoami', () => {
  it('shows profile, workspace, scope and namespace lock', async () => {
    const home = makeHome();
    await login(home, session.server.baseUrl, session.server.runtimeKey, ['-n', 'dev']);
    const out = await troveOk(['whoami'], { home });
    expect(out).toMatch(/Profile:\s+default/);
    expect(out).toContain(session.server.workspaceId);
    expect(out).toMatch(/Scope:\s+workspace/);
    expect(out).toMatch(/Namespace:\s+dev/);
    expect(out).not.toContain(session.server.runtimeKey);
    const json = JSON.parse(await troveOk(['whoami', '--json'], { home }));
    expect(json).toMatchObject({
      profile: 'default',
      source: 'profile',
      base_url: session.server.baseUrl,
      workspace_id: session.server.workspaceId,
      scope: 'workspace',
      namespace_lock: null,
      namespace: 'dev',
    });
  });

  it('no profile exits 3 with a hint to log in', async () => {
    const r = await trove(['whoami'], { home: makeHome() });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^error: not logged in$/m);
    expect(r.stderr).toContain('trove login');
  });

  it('an unknown --profile exits 3 and names the saved ones', async () => {
    const home = makeHome();
    await login(home, session.server.baseUrl, session.server.runtimeKey, ['--save-as', 'work']);
    const r = await trove(['whoami', '--profile', 'nope'], { home });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('no profile named "nope"');
    expect(r.stderr).toContain('work');
    // No "default" but another profile: the error says which ones exist.
    const r2 = await trove(['whoami'], { home });
    expect(r2.code).toBe(3);
    expect(r2.stderr).toContain('saved profiles: work');
    expect((await trove(['whoami', '--profile', 'work'], { home })).code).toBe(0);
    expect((await trove(['whoami'], { home, env: { TROVE_PROFILE: 'work' } })).code).toBe(0);
  });

  it('a revoked or wrong key exits 2', async () => {
    const r = await trove(['whoami'], {
      home: makeHome(),
      env: { TROVE_API_KEY: 'trove-sk-wrong', TROVE_BASE_URL: session.server.baseUrl },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: Invalid API key');
  });

  it('a server that is down exits 4', async () => {
    const r = await trove(['whoami'], {
      home: makeHome(),
      env: { TROVE_API_KEY: session.server.runtimeKey, TROVE_BASE_URL: 'http://127.0.0.1:9' },
    });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error: .*(ECONNREFUSED|Connection error)/m);
    expect(r.stderr).toMatch(/^hint: is the server running\?/m);
  });
});

describe('precedence: flag > environment > profile', () => {
  it('TROVE_API_KEY overrides the profile unless --profile is given; -n beats both', async () => {
    const home = makeHome();
    await login(home, session.server.baseUrl, session.server.adminKey);
    const env = {
      TROVE_API_KEY: session.server.runtimeKey,
      TROVE_BASE_URL: session.server.baseUrl,
      TROVE_NAMESPACE: 'env-ns',
    };
    const fromEnv = JSON.parse(await troveOk(['whoami', '--json'], { home, env }));
    expect(fromEnv).toMatchObject({ source: 'env', scope: 'workspace', namespace: 'env-ns', profile: null });
    const fromFlag = JSON.parse(await troveOk(['whoami', '--json', '-n', 'flag-ns'], { home, env }));
    expect(fromFlag.namespace).toBe('flag-ns');
    const fromProfile = JSON.parse(await troveOk(['whoami', '--json', '--profile', 'default'], { home, env }));
    expect(fromProfile).toMatchObject({ source: 'profile', scope: 'admin', namespace: null });
    // The environment's namespace does not leak into an explicitly chosen profile.
    await troveOk(['write', 'p.txt', 'x', '-n', 'p-ns'], { home, env });
    const runtimeHome = makeHome();
    await login(runtimeHome, session.server.baseUrl, session.server.runtimeKey, ['-n', 'prof-ns']);
    await troveOk(['write', 'where.txt', 'profile'], { home: runtimeHome, env: { TROVE_NAMESPACE: 'env-ns' } });
    expect(await troveOk(['cat', 'where.txt', '-n', 'prof-ns'], { home: runtimeHome })).toBe('profile');
    await troveOk(['write', 'where2.txt', 'explicit', '--profile', 'default'], { home: runtimeHome, env: { ...env } });
    expect(await troveOk(['cat', 'where2.txt', '-n', 'prof-ns'], { home: runtimeHome })).toBe('explicit');
  });
});

describe('logout', () => {
  it('removes the profile and keeps the rest of the file; a missing profile exits 3', async () => {
    const home = makeHome();
    await login(home, session.server.baseUrl, session.server.runtimeKey);
    await login(home, session.server.baseUrl, session.server.adminKey, ['--save-as', 'admin']);
    await troveOk(['logout'], { home });
    expect(Object.keys(readConfig(home).profiles)).toEqual(['admin']);
    const again = await trove(['logout'], { home });
    expect(again.code).toBe(3);
    expect((await trove(['whoami'], { home })).code).toBe(3);
    await troveOk(['logout', '--profile', 'admin'], { home });
    expect(readConfig(home).profiles).toEqual({});
  });
});

describe('doctor', () => {
  it('checks session.server, latency, clock, key, namespace and sandbox', async () => {
    const home = makeHome();
    await login(home, session.server.baseUrl, session.server.runtimeKey, ['-n', 'dev']);
    const r = await trove(['doctor', '--json'], { home });
    const report = JSON.parse(r.stdout);
    const names = report.checks.map((c: { name: string }) => c.name);
    expect(names).toEqual(['config', 'server', 'latency', 'clock', 'key', 'namespace', 'sandbox']);
    const byName = Object.fromEntries(report.checks.map((c: { name: string; status: string }) => [c.name, c]));
    expect(byName.server.status).toBe('ok');
    expect(byName.key.status).toBe('ok');
    expect(byName.clock.status).toBe('ok');
    expect(byName.latency.detail).toMatch(/\d+ ms round trip/);
    // The exec mode is an admin detail: a workspace key's doctor says it did not check it.
    expect(byName.sandbox).toMatchObject({ status: 'warn', detail: expect.stringContaining('admin keys only') });
    expect(r.code).toBe(0);
    const text = await trove(['doctor'], { home });
    expect(text.stdout).toMatch(/✓ server/);
  });

  it('with an admin key, reports the server details and checks the sandbox', async () => {
    const home = makeHome();
    await login(home, session.server.baseUrl, session.server.adminKey);
    const r = await trove(['doctor', '--json'], { home });
    const report = JSON.parse(r.stdout);
    const byName = Object.fromEntries(
      report.checks.map((c: { name: string; status: string; detail: string }) => [c.name, c]),
    );
    const health = await (
      await fetch(`${session.server.baseUrl}/v1/admin/health`, {
        headers: { authorization: `Bearer ${session.server.adminKey}` },
      })
    ).json();
    expect(byName.server).toMatchObject({
      status: 'ok',
      detail: expect.stringContaining(`version ${health.version} (database ok, volume ok)`),
    });
    // The sandbox check mirrors the details: bubblewrap ok, insecure warn, unavailable fail (exit 1).
    const expected = health.exec === 'bubblewrap' ? 'ok' : health.exec === 'unavailable' ? 'fail' : 'warn';
    expect(byName.sandbox.status).toBe(expected);
    expect(r.code).toBe(expected === 'fail' ? 1 : 0);
  });

  it('exits 4 when the server is down and 2 for a bad key', async () => {
    const down = await trove(['doctor'], {
      home: makeHome(),
      env: { TROVE_API_KEY: 'trove-sk-x', TROVE_BASE_URL: 'http://127.0.0.1:9' },
    });
    expect(down.code).toBe(4);
    expect(down.stdout).toMatch(/✗ server/);
    const bad = await trove(['doctor'], {
      home: makeHome(),
      env: { TROVE_API_KEY: 'trove-sk-bad', TROVE_BASE_URL: session.server.baseUrl },
    });
    expect(bad.code).toBe(2);
    expect(bad.stdout).toMatch(/✗ key/);
  });
});
