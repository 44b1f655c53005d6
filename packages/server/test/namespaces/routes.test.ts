/** namespaces/routes.ts: list a workspace's namespaces, delete one (admin key), in-process. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NamespaceService } from '../../src/namespaces/service.js';
import { startTestApp, type TestApp } from '../helpers/app.js';

const INVALID_NS = {
  detail: 'Invalid namespace name: use 1-64 characters of A-Z a-z 0-9 . _ - (not "." or "..")',
  code: 'namespace_invalid',
};

let t: TestApp;
let base: string;
beforeAll(async () => {
  t = await startTestApp();
  base = `/v1/workspaces/${t.workspaceId}/namespaces`;
  for (const [ns, path, content] of [
    ['alpha', 'a.txt', 'hello'],
    ['alpha', 'd/b.txt', 'xy'],
    ['beta', 'c.txt', ''],
  ]) {
    expect((await t.as(t.runtimeKey, ns).post('/write', { path, content })).statusCode).toBe(200);
  }
});
afterAll(() => t?.close());

interface Listed {
  name: string;
  created_at: string;
  last_activity_at: string;
  size_bytes: number;
  file_count: number;
}

describe('GET /v1/workspaces/{ws}/namespaces', () => {
  it('lists every namespace with its size and file count', async () => {
    for (const key of [t.adminKey, t.runtimeKey]) {
      const res = await t.as(key).get(base);
      expect(res.statusCode).toBe(200);
      const list = res.json<{ namespaces: Listed[] }>().namespaces;
      expect(list.map((n) => [n.name, n.size_bytes, n.file_count]).sort()).toEqual([
        ['alpha', 7, 2],
        ['beta', 0, 1],
      ]);
      for (const n of list)
        expect(Object.keys(n).sort()).toEqual(['created_at', 'file_count', 'last_activity_at', 'name', 'size_bytes']);
    }
  });

  it('shows a namespace-locked key only its own', async () => {
    const locked = await t.createKey({ namespace: 'beta' });
    const res = await t.as(locked.api_key).get(base);
    expect(res.json<{ namespaces: Listed[] }>().namespaces.map((n) => n.name)).toEqual(['beta']);
  });

  it('another workspace is 404; no key is 401', async () => {
    const other = await t.as(t.runtimeKey).get('/v1/workspaces/ws-0000000000000000/namespaces');
    expect([other.statusCode, other.json()]).toEqual([
      404,
      { detail: 'Workspace not found: ws-0000000000000000', code: 'workspace_not_found' },
    ]);
    const none = await t.as(null).get(base);
    expect([none.statusCode, none.json()]).toEqual([401, { detail: 'Invalid API key', code: 'unauthorized' }]);
  });
});

describe('DELETE /v1/workspaces/{ws}/namespaces/{ns}', () => {
  it('deletes a namespace and its files; a second delete is 404', async () => {
    expect((await t.as(t.runtimeKey, 'doomed').post('/write', { path: 'x.txt', content: 'x' })).statusCode).toBe(200);
    const res = await t.as(t.adminKey).delete(`${base}/doomed`);
    expect([res.statusCode, res.json()]).toEqual([200, { namespace: 'doomed', deleted: true }]);
    const names = (await t.as(t.adminKey).get(base)).json<{ namespaces: Listed[] }>().namespaces.map((n) => n.name);
    expect(names).not.toContain('doomed');
    const read = await t.as(t.runtimeKey, 'doomed').get('/files/x.txt');
    expect(read.statusCode).toBe(404);
    const again = await t.as(t.adminKey).delete(`${base}/doomed`);
    expect([again.statusCode, again.json()]).toEqual([
      404,
      { detail: 'Namespace not found: doomed', code: 'namespace_not_found' },
    ]);
  });

  it('refuses an invalid name, workspace keys and other workspaces', async () => {
    const bad = await t.as(t.adminKey).delete(`${base}/${'n'.repeat(65)}`);
    expect([bad.statusCode, bad.json()]).toEqual([400, INVALID_NS]);
    for (const key of [t.runtimeKey, (await t.createKey({ namespace: 'alpha' })).api_key]) {
      const res = await t.as(key).delete(`${base}/alpha`);
      expect([res.statusCode, res.json()]).toEqual([
        403,
        { detail: 'Workspace keys cannot manage namespaces.', code: 'scope_forbidden' },
      ]);
    }
    const other = await t.as(t.adminKey).delete('/v1/workspaces/ws-0000000000000000/namespaces/alpha');
    expect([other.statusCode, other.json()]).toEqual([
      404,
      { detail: 'Workspace not found: ws-0000000000000000', code: 'workspace_not_found' },
    ]);
    expect((await t.as(t.runtimeKey, 'alpha').get('/files/a.txt')).body).toBe('hello');
  });
});

describe('last_activity_at', () => {
  it("records a namespace's activity: made by its first write, and at the first call of a server that did not make it", async () => {
    const ns = 'activity';
    const row = async () =>
      (await t.as(t.adminKey).get(base)).json<{ namespaces: Listed[] }>().namespaces.find((n) => n.name === ns)!;
    expect((await t.as(t.runtimeKey, ns).post('/write', { path: 'a', content: '1' })).statusCode).toBe(200);
    const first = await row();
    // The row was made with the write's time: nothing wrote it again.
    expect(first.last_activity_at).toBe(first.created_at);
    await new Promise((r) => setTimeout(r, 5));
    // Another server over the same database and volume (a restart): the row exists, so its first call records activity.
    const again = new NamespaceService(t.ctx.store.db, t.dataDir, { uid: 0, gid: 0, enabled: false });
    await again.ensure(t.workspaceId, ns);
    await again.touch(t.workspaceId, ns);
    const second = await row();
    expect(second.created_at).toBe(first.created_at);
    expect(Date.parse(second.last_activity_at)).toBeGreaterThan(Date.parse(first.last_activity_at));
  });
});
