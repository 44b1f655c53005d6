/**
 * webhooks/routes.ts in-process: create, list, retrieve, update, delete, test, the delivery log and resend, the
 * SSE stream (over the app's loopback port), and their refusals. Delivery, signing, retries and SSRF at
 * connect time are tested in test/webhooks and test/e2e.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { startTestApp, type Client, type TestApp } from '../helpers/app.js';

const INVALID_NS = {
  detail: 'Invalid namespace name: use 1-64 characters of A-Z a-z 0-9 . _ - (not "." or "..")',
  code: 'namespace_invalid',
};
const NOT_FOUND = { detail: 'Webhook not found: wh-nope', code: 'webhook_not_found' };

interface Hook {
  webhook_id: string;
  url: string;
  enabled: boolean;
  signing_secret?: string;
}

const expectError = async (pending: Promise<LightMyRequestResponse>, status: number, error: object) => {
  const res = await pending;
  expect([res.statusCode, res.json()], JSON.stringify(error)).toEqual([status, error]);
};

describe('with private targets allowed (development)', () => {
  let t: TestApp;
  let admin: Client;
  let base: string;
  beforeAll(async () => {
    t = await startTestApp({ env: { TROVE_WEBHOOK_ALLOW_PRIVATE: '1' } });
    admin = t.as(t.adminKey);
    base = `/v1/workspaces/${t.workspaceId}/webhooks`;
  });
  afterAll(() => t?.close());

  it('creates, lists, retrieves, updates and deletes a webhook', async () => {
    const created = await admin.post(base, {
      url: 'http://127.0.0.1:9/hook',
      events: ['file.written'],
      namespace: 'hooks',
      description: 'first',
    });
    expect(created.statusCode).toBe(201);
    const hook = created.json<Hook>();
    expect(hook).toMatchObject({
      webhook_id: expect.stringMatching(/^wh-/),
      url: 'http://127.0.0.1:9/hook',
      events: ['file.written'],
      namespace: 'hooks',
      description: 'first',
      enabled: true,
      signing_secret: expect.stringMatching(/^trove-whsec-/),
    });
    const id = hook.webhook_id;

    const list = await admin.get(base);
    expect(list.statusCode).toBe(200);
    expect(list.json<{ webhooks: Hook[] }>().webhooks.map((w) => w.webhook_id)).toEqual([id]);
    const one = await admin.get(`${base}/${id}`);
    expect(one.statusCode).toBe(200);
    // The secret is shown once, at creation.
    expect(one.json<Hook>()).toMatchObject({ webhook_id: id, url: 'http://127.0.0.1:9/hook' });
    expect(one.json<Hook>().signing_secret).toBeUndefined();

    const patched = await admin.patch(`${base}/${id}`, { enabled: false, description: 'second' });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ webhook_id: id, enabled: false, description: 'second' });

    const deleted = await admin.delete(`${base}/${id}`);
    expect([deleted.statusCode, deleted.json()]).toEqual([200, { webhook_id: id, deleted: true }]);
    await expectError(admin.get(`${base}/${id}`), 404, {
      detail: `Webhook not found: ${id}`,
      code: 'webhook_not_found',
    });
  });

  it('records deliveries, sends a test, resends, and refuses a resend while disabled', async () => {
    const hook = (await admin.post(base, { url: 'http://127.0.0.1:9/log', events: ['file.written'] })).json<Hook>();
    const id = hook.webhook_id;
    expect((await t.as(t.runtimeKey, 'hooks').post('/write', { path: 'a.txt', content: 'a' })).statusCode).toBe(200);
    // The outbox row is written with the event, in the same transaction.
    const log = await admin.get(`${base}/${id}/deliveries`);
    expect(log.statusCode).toBe(200);
    const deliveries = log.json<{ deliveries: Array<{ delivery_id: string; status: string }> }>().deliveries;
    expect(deliveries).toHaveLength(1);
    const deliveryId = deliveries[0]!.delivery_id;
    const detail = await admin.get(`${base}/${id}/deliveries/${deliveryId}`);
    expect(detail.statusCode).toBe(200);
    expect(detail.json()).toMatchObject({ delivery_id: deliveryId, attempt_history: expect.any(Array) });

    // Nothing listens on port 9: the test delivery fails, which is an answer, not an error.
    const test = await admin.post(`${base}/${id}/test`);
    expect(test.statusCode).toBe(200);
    expect(test.json()).toMatchObject({ ok: false });

    const resent = await admin.post(`${base}/${id}/deliveries/${deliveryId}/resend`);
    expect(resent.statusCode).toBe(200);
    expect(resent.json()).toMatchObject({ delivery_id: deliveryId, status: 'pending' });
    await admin.patch(`${base}/${id}`, { enabled: false });
    await expectError(admin.post(`${base}/${id}/deliveries/${deliveryId}/resend`), 409, {
      detail: `Webhook ${id} is disabled: re-enable it with PATCH {"enabled": true} before resending`,
      code: 'conflict',
    });
    await expectError(admin.get(`${base}/${id}/deliveries/dlv-nope`), 404, {
      detail: 'Delivery not found: dlv-nope',
      code: 'delivery_not_found',
    });
    await expectError(admin.get(`${base}/${id}/deliveries?status=lost`), 422, {
      detail: 'querystring field "status" must be equal to one of the allowed values',
      code: 'validation_failed',
    });
  });

  it('validates the body', async () => {
    await expectError(admin.post(base, { events: ['*'] }), 422, {
      detail: 'body: missing required field "url"',
      code: 'validation_failed',
    });
    await expectError(admin.post(base, { url: 'ftp://x/h', events: ['*'] }), 422, {
      detail: 'url: only http:// and https:// URLs are allowed (got "ftp:")',
      code: 'validation_failed',
    });
    await expectError(admin.post(base, { url: 'http://127.0.0.1:9/h', events: [] }), 422, {
      detail: 'events: must be a non-empty array of event types, or ["*"] for every type',
      code: 'validation_failed',
    });
    const unknown = await admin.post(base, { url: 'http://127.0.0.1:9/h', events: ['nope.event'] });
    expect([unknown.statusCode, unknown.json<{ code: string }>().code]).toEqual([422, 'validation_failed']);
    expect(unknown.json<{ detail: string }>().detail).toMatch(
      /^events: unknown event type "nope\.event" \(known: file\.written, /,
    );
    await expectError(
      admin.post(base, { url: 'http://127.0.0.1:9/h', events: ['*'], namespace: '../x' }),
      400,
      INVALID_NS,
    );
  });

  it('answers 404 for unknown webhooks and other workspaces', async () => {
    await expectError(admin.get(`${base}/wh-nope`), 404, NOT_FOUND);
    await expectError(admin.patch(`${base}/wh-nope`, { enabled: true }), 404, NOT_FOUND);
    await expectError(admin.delete(`${base}/wh-nope`), 404, NOT_FOUND);
    await expectError(admin.post(`${base}/wh-nope/test`), 404, NOT_FOUND);
    await expectError(admin.get(`${base}/wh-nope/deliveries`), 404, NOT_FOUND);
    await expectError(admin.get('/v1/workspaces/ws-0000000000000000/webhooks'), 404, {
      detail: 'Workspace not found: ws-0000000000000000',
      code: 'workspace_not_found',
    });
  });

  it('refuses workspace keys (403) and missing keys (401) on management routes', async () => {
    const locked = await t.createKey({ namespace: 'hooks' });
    for (const key of [t.runtimeKey, locked.api_key]) {
      const c = t.as(key);
      for (const pending of [
        c.get(base),
        c.post(base, { url: 'http://127.0.0.1:9/h', events: ['*'] }),
        c.get(`${base}/wh-nope`),
        c.delete(`${base}/wh-nope`),
      ]) {
        await expectError(pending, 403, { detail: 'Workspace keys cannot manage webhooks.', code: 'scope_forbidden' });
      }
    }
    await expectError(t.as(null).get(base), 401, { detail: 'Invalid API key', code: 'unauthorized' });
  });

  it('streams events to any key of the workspace; bad queries are JSON errors', async () => {
    const url = `${await t.listen()}${base}/stream`;
    const ctl = new AbortController();
    const res = await fetch(`${url}?namespace=hooks`, {
      headers: { authorization: `Bearer ${t.runtimeKey}` },
      signal: ctl.signal,
    });
    try {
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = res.body!.getReader();
      let text = '';
      const read = async (until: string) => {
        while (!text.includes(until)) {
          const { done, value } = await reader.read();
          if (done) throw new Error(`stream ended before ${until}: ${text}`);
          text += new TextDecoder().decode(value);
        }
      };
      await read('"connected"');
      await t.as(t.runtimeKey, 'hooks').post('/write', { path: 'streamed.txt', content: 's' });
      await read('workspace/streamed.txt');
      expect(text).toContain('"type":"file.written"');
    } finally {
      ctl.abort();
    }
    await expectError(t.as(t.runtimeKey).get(`${base}/stream?heartbeat=0`), 422, {
      detail: 'querystring field "heartbeat" must be >= 1',
      code: 'validation_failed',
    });
    await expectError(t.as(t.runtimeKey).get(`${base}/stream?namespace=..`), 400, INVALID_NS);
    await expectError(t.as(t.runtimeKey).get(`${base}/stream?source=x`), 400, {
      detail: 'Invalid source: "x" (known: exec, api, write, upload; comma-separated)',
      code: 'query_invalid',
    });
    const locked = await t.createKey({ namespace: 'hooks' });
    await expectError(t.as(locked.api_key).get(`${base}/stream?namespace=other`), 403, {
      detail: 'This key is locked to namespace "hooks"',
      code: 'namespace_forbidden',
    });
    await expectError(t.as(null).get(`${base}/stream`), 401, { detail: 'Invalid API key', code: 'unauthorized' });
  });
});

describe('with private targets refused (the default)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.close());

  it('refuses loopback and private addresses with 400', async () => {
    const base = `/v1/workspaces/${t.workspaceId}/webhooks`;
    const advice =
      'webhooks may only target public addresses (the operator setting TROVE_WEBHOOK_ALLOW_PRIVATE=1 allows private ones for development)';
    await expectError(t.as(t.adminKey).post(base, { url: 'http://127.0.0.1:9/h', events: ['*'] }), 400, {
      detail: `url: Refused: 127.0.0.1 is a loopback address; ${advice}`,
      code: 'bad_request',
    });
    await expectError(t.as(t.adminKey).post(base, { url: 'http://10.0.0.1/h', events: ['*'] }), 400, {
      detail: `url: Refused: 10.0.0.1 is a private network address; ${advice}`,
      code: 'bad_request',
    });
  });
});
