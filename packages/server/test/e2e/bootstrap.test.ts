/** First start, restarts, signup and the operator workspace command. */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverBin, startServer, type StartedServer } from '../../../../test/helpers/server.js';

const cleanup: StartedServer[] = [];
afterAll(async () => {
  for (const s of cleanup) await s.close();
});

describe('bootstrap', () => {
  it('prints both keys and login lines once; restarts print no secrets and keep data', async () => {
    const first = await startServer({
      env: { TROVE_BOOTSTRAP_ADMIN_KEY: undefined, TROVE_BOOTSTRAP_RUNTIME_KEY: undefined },
      adminKey: 'x'.repeat(20),
    });
    const out = first.output();
    const keys = [...out.matchAll(/trove-sk-[A-Za-z0-9]+/g)].map((m) => m[0]);
    expect(new Set(keys).size).toBe(2);
    expect(out).toMatch(/trove login --api-key trove-sk-\S+ --base-url http:\/\/127\.0\.0\.1:\d+/);
    expect(out).toMatch(/Trove listening on http:\/\/127\.0\.0\.1:\d+/);
    const adminKey = out.match(/admin key[^:]*: (trove-sk-\S+)/)![1]!;
    const me = await fetch(first.baseUrl + '/v1/me', { headers: { authorization: `Bearer ${adminKey}` } });
    const ident = (await me.json()) as { scope: string; workspace_id: string };
    expect(ident.scope).toBe('admin');
    await first.stop();
    const second = await startServer({ dataDir: first.dataDir, adminKey });
    cleanup.push(second);
    expect(second.output()).not.toMatch(/trove-sk-/);
    expect(second.workspaceId).toBe(ident.workspace_id);
    rmSync(first.dataDir, { recursive: true, force: true });
  });

  it('honours preset bootstrap keys', async () => {
    const s = await startServer();
    cleanup.push(s);
    const me = await fetch(s.baseUrl + '/v1/me', { headers: { authorization: `Bearer ${s.runtimeKey}` } });
    expect(await me.json()).toMatchObject({ scope: 'workspace', namespace: null, key_name: 'runtime' });
  });

  it('signup is 403 unless enabled, then 201 with both keys', async () => {
    const closed = await startServer();
    cleanup.push(closed);
    let res = await fetch(closed.baseUrl + '/v1/workspaces', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x' }),
    });
    expect(res.status).toBe(403);
    const open = await startServer({ env: { TROVE_ALLOW_SIGNUP: '1' } });
    cleanup.push(open);
    res = await fetch(open.baseUrl + '/v1/workspaces', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'acme' }),
    });
    expect(res.status).toBe(201);
    const ws = (await res.json()) as { workspace_id: string; api_key: string; admin_api_key: string };
    expect(ws.workspace_id).toMatch(/^ws-[0-9a-f]+$/);
    const me = (await (
      await fetch(open.baseUrl + '/v1/me', { headers: { authorization: `Bearer ${ws.api_key}` } })
    ).json()) as { workspace_id: string; scope: string };
    expect(me).toMatchObject({ workspace_id: ws.workspace_id, scope: 'workspace' });
    // Tenants are isolated: the new workspace's admin cannot read the default workspace.
    res = await fetch(`${open.baseUrl}/v1/workspaces/${open.workspaceId}/keys`, {
      headers: { authorization: `Bearer ${ws.admin_api_key}` },
    });
    expect(res.status).toBe(404);
    res = await fetch(open.baseUrl + '/v1/workspaces', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({}),
    });
    expect(res.status).toBe(422);
  });

  it('trove-server workspace create prints a new workspace with keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'trove-wscreate-'));
    try {
      const out = execFileSync(
        process.execPath,
        [serverBin, 'workspace', 'create', '--name', 'ops', '--data-dir', dir],
        { encoding: 'utf8' },
      );
      const ws = JSON.parse(out) as { workspace_id: string; api_key: string; admin_api_key: string; name: string };
      expect(ws.name).toBe('ops');
      expect(ws.api_key).toMatch(/^trove-sk-/);
      expect(ws.admin_api_key).toMatch(/^trove-sk-/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad configuration with a clear message and exit code 2', () => {
    let err: any;
    try {
      execFileSync(process.execPath, [serverBin, '--port', 'abc'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      err = e;
    }
    expect(err.status).toBe(2);
    expect(err.stderr).toContain('TROVE_PORT must be');
  });

  it('serves /healthz and /openapi.json without a key', async () => {
    const s = await startServer();
    cleanup.push(s);
    expect(await (await fetch(s.baseUrl + '/healthz')).json()).toEqual({ status: 'ok' });
    const doc = (await (await fetch(s.baseUrl + '/openapi.json')).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    for (const p of [
      '/write',
      '/delete',
      '/files/{path}',
      '/v1/files',
      '/v1/files/content',
      '/v1/me',
      '/v1/exec',
      '/exec',
      '/v1/workspaces/{ws}/events',
      '/v1/workspaces/{ws}/keys',
    ]) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
    const res = await fetch(s.baseUrl + '/v1/me');
    expect(res.headers.get('x-request-id')).toMatch(/^req-/);
  });
});
