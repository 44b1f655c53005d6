/** auth/routes.ts: create, list and revoke API keys under /v1/workspaces/{ws}/keys (admin key), in-process. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';

const INVALID_NS = {
  detail: 'Invalid namespace name: use 1-64 characters of A-Z a-z 0-9 . _ - (not "." or "..")',
  code: 'namespace_invalid',
};

let t: TestApp;
let keys: string;
beforeAll(async () => {
  t = await startTestApp();
  keys = `/v1/workspaces/${t.workspaceId}/keys`;
});
afterAll(() => t?.close());

describe('POST /v1/workspaces/{ws}/keys', () => {
  it('creates a workspace key, a namespace-locked key and an admin key; the secret is shown once', async () => {
    const admin = t.as(t.adminKey);
    const res = await admin.post(keys, { name: 'ci' });
    expect(res.statusCode).toBe(201);
    const created = res.json<{ key_id: string; api_key: string; prefix: string }>();
    expect(created).toEqual({
      key_id: expect.stringMatching(/^key-/),
      name: 'ci',
      prefix: created.api_key.slice(0, 12),
      scope: 'workspace',
      namespace: null,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      api_key: expect.stringMatching(/^trove-sk-/),
    });
    expect((await t.as(created.api_key).get('/v1/me')).json()).toMatchObject({
      key_id: created.key_id,
      scope: 'workspace',
    });

    const locked = (await admin.post(keys, { name: 'locked', namespace: 'ns-a' })).json();
    expect(locked).toMatchObject({ scope: 'workspace', namespace: 'ns-a' });
    const second = (await admin.post(keys, { name: 'second admin', admin: true, namespace: null })).json();
    expect(second).toMatchObject({ scope: 'admin', namespace: null });

    const list = await admin.get(keys);
    expect(list.statusCode).toBe(200);
    const listed = list.json<{ keys: Array<Record<string, unknown>> }>().keys;
    expect(listed.map((k) => k.name)).toEqual(['admin', 'runtime', 'ci', 'locked', 'second admin']);
    // The list never shows a secret.
    for (const k of listed)
      expect(Object.keys(k).sort()).toEqual(['created_at', 'key_id', 'name', 'namespace', 'prefix', 'scope']);
  });

  it('validates the body', async () => {
    const cases: Array<[unknown, number, object]> = [
      [{}, 422, { detail: 'body: missing required field "name"', code: 'validation_failed' }],
      [
        { name: '' },
        422,
        { detail: 'body field "name" must NOT have fewer than 1 characters', code: 'validation_failed' },
      ],
      [{ name: 'a', admin: 'yes' }, 422, { detail: 'body field "admin" must be boolean', code: 'validation_failed' }],
      [
        { name: 'a', namespace: 5 },
        422,
        { detail: 'body field "namespace" must be string,null', code: 'validation_failed' },
      ],
      [{ name: 'a', namespace: '../x' }, 400, INVALID_NS],
      [
        { name: 'a', admin: true, namespace: 'x' },
        400,
        { detail: 'Admin keys cannot be locked to a namespace', code: 'bad_request' },
      ],
    ];
    for (const [body, status, error] of cases) {
      const res = await t.as(t.adminKey).post(keys, body);
      expect([res.statusCode, res.json()], JSON.stringify(body)).toEqual([status, error]);
    }
  });
});

describe('DELETE /v1/workspaces/{ws}/keys/{key_id}', () => {
  it('revokes a key for its very next request; a second revoke is 404', async () => {
    const victim = await t.createKey({ name: 'victim' });
    expect((await t.as(victim.api_key).get('/v1/me')).statusCode).toBe(200);
    const res = await t.as(t.adminKey).delete(`${keys}/${victim.key_id}`);
    expect([res.statusCode, res.json()]).toEqual([200, { key_id: victim.key_id, revoked: true }]);
    const after = await t.as(victim.api_key).get('/v1/me');
    expect([after.statusCode, after.json()]).toEqual([401, { detail: 'Invalid API key', code: 'unauthorized' }]);
    const again = await t.as(t.adminKey).delete(`${keys}/${victim.key_id}`);
    expect([again.statusCode, again.json()]).toEqual([
      404,
      { detail: `Key not found: ${victim.key_id}`, code: 'key_not_found' },
    ]);
    expect(
      (await t.as(t.adminKey).get(keys)).json<{ keys: Array<{ key_id: string }> }>().keys.map((k) => k.key_id),
    ).not.toContain(victim.key_id);
  });

  it('an unknown key id is 404', async () => {
    const res = await t.as(t.adminKey).delete(`${keys}/key-nope`);
    expect([res.statusCode, res.json()]).toEqual([404, { detail: 'Key not found: key-nope', code: 'key_not_found' }]);
  });
});

describe('who may manage keys', () => {
  it('workspace keys get 403, other workspaces 404, missing or wrong keys 401', async () => {
    const locked = await t.createKey({ name: 'locked-b', namespace: 'ns-b' });
    for (const key of [t.runtimeKey, locked.api_key]) {
      const c = t.as(key);
      for (const res of [await c.get(keys), await c.post(keys, { name: 'x' }), await c.delete(`${keys}/key-nope`)]) {
        expect([res.statusCode, res.json()]).toEqual([
          403,
          { detail: 'Workspace keys cannot manage keys.', code: 'scope_forbidden' },
        ]);
      }
    }
    const other = await t.as(t.adminKey).get('/v1/workspaces/ws-0000000000000000/keys');
    expect([other.statusCode, other.json()]).toEqual([
      404,
      { detail: 'Workspace not found: ws-0000000000000000', code: 'workspace_not_found' },
    ]);
    for (const key of [null, 'trove-sk-wrong']) {
      const res = await t.as(key).post(keys, { name: 'x' });
      expect([res.statusCode, res.json()]).toEqual([401, { detail: 'Invalid API key', code: 'unauthorized' }]);
    }
  });
});
