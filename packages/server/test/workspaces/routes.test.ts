/** workspaces/routes.ts: signup (`POST /v1/workspaces`, off unless allowed) and identity (`GET /v1/me`), in-process. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';

describe('signup disabled (the default)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.close());

  it('POST /v1/workspaces answers 403 signup_disabled', async () => {
    const res = await t.request('POST', '/v1/workspaces', { body: { name: 'x' } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({
      detail: 'Signup is disabled on this server (the operator can set TROVE_ALLOW_SIGNUP=1)',
      code: 'signup_disabled',
    });
  });

  it('GET /v1/me describes the calling key', async () => {
    const admin = await t.as(t.adminKey).get('/v1/me');
    expect(admin.statusCode).toBe(200);
    expect(admin.json()).toEqual({
      workspace_id: t.workspaceId,
      key_id: expect.stringMatching(/^key-/),
      key_name: 'admin',
      scope: 'admin',
      namespace: null,
    });
    const rt = await t.as(t.runtimeKey).get('/v1/me');
    expect(rt.json()).toMatchObject({
      workspace_id: t.workspaceId,
      key_name: 'runtime',
      scope: 'workspace',
      namespace: null,
    });
    const locked = await t.createKey({ name: 'locked', namespace: 'ns-a' });
    expect((await t.as(locked.api_key).get('/v1/me')).json()).toEqual({
      workspace_id: t.workspaceId,
      key_id: locked.key_id,
      key_name: 'locked',
      scope: 'workspace',
      namespace: 'ns-a',
    });
  });

  it('GET /v1/me refuses a missing, malformed or unknown key', async () => {
    for (const authorization of [undefined, 'Bearer', 'Basic abc', `Bearer trove-sk-${'0'.repeat(48)}`]) {
      const res = await t.request('GET', '/v1/me', { headers: authorization ? { authorization } : {} });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({ detail: 'Invalid API key', code: 'unauthorized' });
    }
  });
});

describe('signup allowed', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { TROVE_ALLOW_SIGNUP: '1' } });
  });
  afterAll(() => t?.close());

  it('creates a workspace whose keys work at once', async () => {
    const res = await t.request('POST', '/v1/workspaces', { body: { name: 'acme' } });
    expect(res.statusCode).toBe(201);
    const ws = res.json<{ workspace_id: string; name: string; api_key: string; admin_api_key: string }>();
    expect(ws).toEqual({
      workspace_id: expect.stringMatching(/^ws-/),
      name: 'acme',
      api_key: expect.stringMatching(/^trove-sk-/),
      admin_api_key: expect.stringMatching(/^trove-sk-/),
    });
    expect(ws.workspace_id).not.toBe(t.workspaceId);
    expect((await t.as(ws.admin_api_key).get('/v1/me')).json()).toMatchObject({
      workspace_id: ws.workspace_id,
      scope: 'admin',
    });
    expect((await t.as(ws.api_key).get('/v1/me')).json()).toMatchObject({
      workspace_id: ws.workspace_id,
      scope: 'workspace',
    });
  });

  it('validates the name', async () => {
    const cases: Array<[unknown, number, object]> = [
      [{}, 422, { detail: 'body: missing required field "name"', code: 'validation_failed' }],
      [
        { name: '' },
        422,
        { detail: 'body field "name" must NOT have fewer than 1 characters', code: 'validation_failed' },
      ],
      [
        { name: 'x'.repeat(129) },
        422,
        { detail: 'body field "name" must NOT have more than 128 characters', code: 'validation_failed' },
      ],
      [{ name: 5 }, 422, { detail: 'body field "name" must be string', code: 'validation_failed' }],
      [{ name: '   ' }, 422, { detail: 'Workspace name must be 1-128 characters', code: 'validation_failed' }],
    ];
    for (const [body, status, error] of cases) {
      const res = await t.request('POST', '/v1/workspaces', { body });
      expect([res.statusCode, res.json()], JSON.stringify(body)).toEqual([status, error]);
    }
  });

  it('refuses a body that is not JSON', async () => {
    const bad = await t.request('POST', '/v1/workspaces', {
      body: '{"name":',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'bad_request', detail: expect.stringMatching(/^Malformed JSON body: /) });
    const xml = await t.request('POST', '/v1/workspaces', {
      body: '<a/>',
      headers: { 'content-type': 'application/xml' },
    });
    expect(xml.statusCode).toBe(415);
    expect(xml.json()).toEqual({
      detail: 'Unsupported Content-Type: send application/json',
      code: 'unsupported_media_type',
    });
    // Text, an empty JSON body and no body at all are not an object.
    for (const [body, type] of [
      ['name=x', 'text/plain'],
      ['', 'application/json'],
      [undefined, undefined],
    ] as const) {
      const res = await t.request('POST', '/v1/workspaces', { body, headers: type ? { 'content-type': type } : {} });
      expect([res.statusCode, res.json()]).toEqual([422, { detail: 'body must be object', code: 'validation_failed' }]);
    }
  });
});
