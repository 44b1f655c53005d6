/**
 * Webhooks end to end: the real server, real receivers on loopback. Covers the
 * admin API, signatures (verified with the SDK), filtering, the test call,
 * retries with their attempt log, ordering, auto-disable, resend, and
 * isolation of a hanging endpoint.
 */
import { createHmac } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { verifyWebhook, WebhookSignatureError } from '../../../sdk/src/index.js';
import { eventually, gate, Receiver } from './webhooks-receiver.js';
import { ok } from '../../../../test/helpers/http.js';

let server: StartedServer;
let admin: ReturnType<typeof api>;
let runtime: ReturnType<typeof api>;
const receivers: Receiver[] = [];

interface WebhookJson {
  webhook_id: string;
  url: string;
  events: string[];
  namespace: string | null;
  description: string | null;
  enabled: boolean;
  created_at: string;
  signing_secret?: string;
  last_delivery_ok: boolean | null;
  last_delivery_at: string | null;
  last_delivery_status: number | null;
  disabled_reason: string | null;
  consecutive_failures: number;
}

interface DeliveryJson {
  delivery_id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  last_attempt_at: string | null;
  next_attempt_at: string | null;
  delivered_at: string | null;
  created_at: string;
  attempt_history?: Array<{
    attempted_at: string;
    status_code: number | null;
    error: string | null;
    duration_ms: number;
    next_attempt_at: string | null;
  }>;
}

const base = () => `/v1/workspaces/${server.workspaceId}/webhooks`;

const post = (body: unknown) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});
const patch = (body: unknown) => ({
  method: 'PATCH',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

async function receiver(): Promise<Receiver> {
  const r = await Receiver.start();
  receivers.push(r);
  return r;
}

/** Every signing secret this file was shown, to check none ever reaches the server's log. */
const secretsShown: string[] = [];

async function createHook(body: Record<string, unknown>): Promise<WebhookJson> {
  const created = await ok<WebhookJson>(admin(base(), post(body)), 201);
  secretsShown.push(created.signing_secret!);
  return created;
}

/** A file.written event in `ns`; returns nothing (the event id comes from the receiver). */
async function write(ns: string, path: string, content = 'x'): Promise<void> {
  const res = await api(server, server.runtimeKey, ns)('/write', post({ path, content }));
  expect(res.status, await res.text()).toBe(200);
}

/** A key.created event (namespace null). */
async function keyEvent(name = 'k'): Promise<string> {
  const k = await ok<{ key_id: string }>(admin(`/v1/workspaces/${server.workspaceId}/keys`, post({ name })), 201);
  return k.key_id;
}

async function deliveries(id: string, query = ''): Promise<DeliveryJson[]> {
  return (await ok<{ deliveries: DeliveryJson[] }>(admin(`${base()}/${id}/deliveries${query}`))).deliveries;
}

beforeAll(async () => {
  // Debug logging, so the check that secrets are never logged looks at everything the server says.
  server = await startServer({
    env: { TROVE_WEBHOOK_RETRY_SCHEDULE: '100,200,300', TROVE_WEBHOOK_TIMEOUT_MS: '3000', TROVE_LOG_LEVEL: 'debug' },
  });
  admin = api(server, server.adminKey);
  runtime = api(server, server.runtimeKey);
});

afterEach(async () => {
  // Each test starts without endpoints so earlier ones cannot receive its events.
  const list = await ok<{ webhooks: WebhookJson[] }>(admin(base()));
  for (const w of list.webhooks) await ok(admin(`${base()}/${w.webhook_id}`, { method: 'DELETE' }));
  for (const r of receivers.splice(0)) await r.close();
});

afterAll(async () => {
  await server?.close();
});

describe('webhook endpoints API', () => {
  it('creates (secret shown once), lists, retrieves, updates and deletes', async () => {
    const r = await receiver();
    const created = await createHook({
      url: r.url(),
      events: ['file.written', 'key.created'],
      namespace: 'team-a',
      description: 'ci',
    });
    expect(created).toMatchObject({
      url: r.url(),
      events: ['file.written', 'key.created'],
      namespace: 'team-a',
      description: 'ci',
      enabled: true,
      last_delivery_ok: null,
      last_delivery_at: null,
      last_delivery_status: null,
      disabled_reason: null,
      consecutive_failures: 0,
    });
    expect(created.webhook_id).toMatch(/^wh-[0-9a-f]{16}$/);
    expect(created.signing_secret).toMatch(/^trove-whsec-[A-Za-z0-9]{40}$/);
    expect(created.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const list = await ok<{ webhooks: WebhookJson[] }>(admin(base()));
    expect(list.webhooks).toHaveLength(1);
    expect(list.webhooks[0]).not.toHaveProperty('signing_secret');
    const { signing_secret: _s, ...withoutSecret } = created;
    expect(list.webhooks[0]).toEqual(withoutSecret);
    expect(await ok(admin(`${base()}/${created.webhook_id}`))).toEqual(withoutSecret);
    expect(JSON.stringify(list)).not.toContain(created.signing_secret);

    const updated = await ok<WebhookJson>(
      admin(`${base()}/${created.webhook_id}`, patch({ events: ['*'], namespace: null, description: null })),
    );
    expect(updated).toMatchObject({ events: ['*'], namespace: null, description: null, enabled: true });
    const off = await ok<WebhookJson>(admin(`${base()}/${created.webhook_id}`, patch({ enabled: false })));
    expect(off).toMatchObject({
      enabled: false,
      disabled_reason: 'Disabled by an admin; re-enable with PATCH {"enabled": true}',
    });

    expect(await ok(admin(`${base()}/${created.webhook_id}`, { method: 'DELETE' }))).toEqual({
      webhook_id: created.webhook_id,
      deleted: true,
    });
    const gone = await ok<{ detail: string; code: string }>(
      admin(`${base()}/${created.webhook_id}`, { method: 'DELETE' }),
      404,
    );
    expect(gone).toEqual({ detail: `Webhook not found: ${created.webhook_id}`, code: 'webhook_not_found' });
    expect((await ok<{ webhooks: unknown[] }>(admin(base()))).webhooks).toEqual([]);
  });

  it('defaults events to ["*"] and namespace to null', async () => {
    const r = await receiver();
    const created = await createHook({ url: r.url() });
    expect(created).toMatchObject({ events: ['*'], namespace: null, description: null });
  });

  it.each([
    [
      { url: 'ftp://example.com/x', events: ['*'] },
      422,
      'validation_failed',
      'url: only http:// and https:// URLs are allowed (got "ftp:")',
    ],
    [
      { url: 'not a url', events: ['*'] },
      422,
      'validation_failed',
      'url: not a valid absolute URL: "not a url" (expected e.g. https://example.com/hooks)',
    ],
    [{ events: ['*'] }, 422, 'validation_failed', 'body: missing required field "url"'],
    [
      { url: 'http://127.0.0.1:9/x', events: [] },
      422,
      'validation_failed',
      'events: must be a non-empty array of event types, or ["*"] for every type',
    ],
    [
      { url: 'http://127.0.0.1:9/x', events: ['*', 'file.written'] },
      422,
      'validation_failed',
      'events: "*" subscribes to every type and must be the only entry',
    ],
    [
      { url: 'http://127.0.0.1:9/x', events: ['*'], namespace: '../etc' },
      400,
      'namespace_invalid',
      'Invalid namespace name: use 1-64 characters of A-Z a-z 0-9 . _ - (not "." or "..")',
    ],
    [
      { url: 'http://u:p@127.0.0.1:9/x' },
      422,
      'validation_failed',
      'url: must not contain credentials (user:password@); authenticate deliveries by their signature',
    ],
  ])('refuses %j with %i', async (body, status, code, detail) => {
    expect(await ok(admin(base(), post(body)), status)).toEqual({ detail, code });
  });

  it('names an unknown event type', async () => {
    const res = await ok<{ detail: string; code: string }>(
      admin(base(), post({ url: 'http://127.0.0.1:9/x', events: ['file.writen'] })),
      422,
    );
    expect(res.code).toBe('validation_failed');
    expect(res.detail).toMatch(/^events: unknown event type "file.writen" \(known: file.written, /);
  });

  it('refuses an empty update and malformed JSON', async () => {
    const r = await receiver();
    const h = await createHook({ url: r.url() });
    expect(await ok(admin(`${base()}/${h.webhook_id}`, patch({})), 422)).toEqual({
      detail: 'Nothing to update: send at least one of enabled, url, events, namespace, sources, description',
      code: 'validation_failed',
    });
    const bad = await ok<{ code: string }>(
      admin(base(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"url":' }),
      400,
    );
    expect(bad.code).toBe('bad_request');
    expect(await ok(admin(`${base()}/wh-0000000000000000`, patch({ enabled: true })), 404)).toEqual({
      detail: 'Webhook not found: wh-0000000000000000',
      code: 'webhook_not_found',
    });
  });

  it('is admin-only: workspace keys get 403 on every management route, other workspaces 404', async () => {
    const r = await receiver();
    const h = await createHook({ url: r.url() });
    const routes: Array<[string, string, unknown?]> = [
      ['POST', base(), { url: r.url() }],
      ['GET', base()],
      ['GET', `${base()}/${h.webhook_id}`],
      ['PATCH', `${base()}/${h.webhook_id}`, { enabled: false }],
      ['DELETE', `${base()}/${h.webhook_id}`],
      ['POST', `${base()}/${h.webhook_id}/test`],
      ['GET', `${base()}/${h.webhook_id}/deliveries`],
      ['GET', `${base()}/${h.webhook_id}/deliveries/dlv-x`],
      ['POST', `${base()}/${h.webhook_id}/deliveries/dlv-x/resend`],
    ];
    for (const [method, path, body] of routes) {
      const init =
        body === undefined
          ? { method }
          : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
      expect(await ok(runtime(path, init), 403), `${method} ${path}`).toEqual({
        detail: 'Workspace keys cannot manage webhooks.',
        code: 'scope_forbidden',
      });
      const other = path.replace(server.workspaceId, 'ws-0000000000000000');
      expect((await ok<{ code: string }>(admin(other, init), 404)).code, `${method} ${other}`).toBe(
        'workspace_not_found',
      );
      expect((await api(server, null)(path, init)).status).toBe(401);
    }
    // Nothing changed: the endpoint is still there and enabled.
    expect(await ok<WebhookJson>(admin(`${base()}/${h.webhook_id}`))).toMatchObject({ enabled: true });
  });
});

describe('OpenAPI document', () => {
  it('documents the delivery log, resend and auto-disable (re-enable by PATCH)', async () => {
    type Op = {
      summary?: string;
      description?: string;
      responses?: Record<string, { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> }>;
    };
    const doc = (await (await fetch(`${server.baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, Op>>;
    };
    const hooks = '/v1/workspaces/{ws}/webhooks';
    const op = (path: string, method: string): Op => {
      const o = doc.paths[path]?.[method];
      expect(o, `${method.toUpperCase()} ${path} is in /openapi.json`).toBeDefined();
      return o!;
    };
    expect(op(`${hooks}/{webhook_id}/deliveries`, 'get').description).toMatch(/status.*pending, delivered or failed/);
    expect(op(`${hooks}/{webhook_id}/deliveries/{delivery_id}`, 'get').description).toMatch(/attempt_history/);
    const resend = op(`${hooks}/{webhook_id}/deliveries/{delivery_id}/resend`, 'post');
    expect(resend.description).toMatch(/fresh retry window/);
    expect(Object.keys(resend.responses ?? {})).toContain('409');
    const update = op(`${hooks}/{webhook_id}`, 'patch');
    expect(update.description).toMatch(/Auto-disable: after `TROVE_WEBHOOK_DISABLE_AFTER`/);
    expect(update.description).toMatch(/`\{"enabled": true\}` re-enables it/);
    const view = update.responses?.['200']?.content?.['application/json']?.schema?.properties ?? {};
    expect(Object.keys(view)).toEqual(
      expect.arrayContaining(['enabled', 'disabled_reason', 'consecutive_failures', 'last_delivery_ok']),
    );
    expect(op(`${hooks}/{webhook_id}/test`, 'post').description).toMatch(/synchronously to this endpoint only/);
  });
});

describe('delivery', () => {
  it('signs every delivery so the SDK verifies it; tampering, a wrong secret and a stale timestamp are rejected', async () => {
    const r = await receiver();
    const h = await createHook({ url: r.url('/in'), events: ['file.written'] });
    await write('sig', 'a.txt', 'hello');
    const [hit] = await r.waitForCount(1);
    expect(hit!.path).toBe('/in');
    expect(hit!.headers['content-type']).toBe('application/json');
    expect(hit!.headers['user-agent']).toMatch(/^Trove-Webhooks\/\d+\.\d+\.\d+/);
    expect(hit!.headers['x-trove-event']).toBe('file.written');
    expect(hit!.headers['x-trove-event-id']).toBe(hit!.json.id);
    expect(hit!.headers['x-trove-delivery-id']).toMatch(/^dlv-/);
    expect(hit!.headers['x-trove-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const t = Number(/t=(\d+)/.exec(String(hit!.headers['x-trove-signature']))![1]);
    expect(Math.abs(t - Date.now() / 1000)).toBeLessThan(60);

    const envelope = JSON.parse(hit!.body) as Record<string, unknown>;
    expect(Object.keys(envelope).sort()).toEqual([
      'api_version',
      'created_at',
      'data',
      'event_id',
      'id',
      'namespace',
      'type',
      'workspace_id',
    ]);
    expect(envelope).toMatchObject({
      type: 'file.written',
      api_version: '2026-04-30',
      workspace_id: server.workspaceId,
      namespace: 'sig',
    });
    expect(envelope.event_id).toBe(envelope.id);
    expect(envelope.data).toEqual({ path: 'workspace/a.txt', size_bytes: 5, source: 'write' });

    const secret = h.signing_secret!;
    const event = verifyWebhook({ secret, body: hit!.body, headers: hit!.headers });
    expect(event).toMatchObject({ id: hit!.json.id, type: 'file.written', namespace: 'sig' });

    const reason = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(WebhookSignatureError);
        return (err as WebhookSignatureError).reason;
      }
      return 'accepted';
    };
    expect(
      reason(() => verifyWebhook({ secret, body: hit!.body.replace('a.txt', 'b.txt'), headers: hit!.headers })),
    ).toBe('no_matching_signature');
    expect(
      reason(() => verifyWebhook({ secret: 'trove-whsec-' + 'x'.repeat(40), body: hit!.body, headers: hit!.headers })),
    ).toBe('no_matching_signature');
    expect(
      reason(() => verifyWebhook({ secret, body: hit!.body, headers: hit!.headers, now: new Date((t + 301) * 1000) })),
    ).toBe('timestamp_out_of_tolerance');
    expect(
      reason(() => verifyWebhook({ secret, body: hit!.body, headers: hit!.headers, now: new Date((t + 299) * 1000) })),
    ).toBe('accepted');

    // Standard Webhooks: key = UTF-8 bytes of the secret, i.e. whsec_ + base64(secret) for off-the-shelf verifiers.
    expect(hit!.headers['webhook-id']).toBe(hit!.json.id);
    expect(hit!.headers['webhook-timestamp']).toBe(String(t));
    const key = Buffer.from(Buffer.from(secret, 'utf8').toString('base64'), 'base64');
    const expected = createHmac('sha256', key).update(`${hit!.json.id}.${t}.${hit!.body}`).digest('base64');
    expect(hit!.headers['webhook-signature']).toBe(`v1,${expected}`);
  });

  it('filters by type and namespace; ["*"] receives every type including webhook.test', async () => {
    const all = await receiver();
    const nsA = await receiver();
    const keys = await receiver();
    const hAll = await createHook({ url: all.url(), events: ['*'] });
    const hA = await createHook({ url: nsA.url(), events: ['file.written', 'file.deleted'], namespace: 'fa' });
    const hKeys = await createHook({ url: keys.url(), events: ['key.created'] });

    await write('fa', 'one.txt');
    await write('fb', 'two.txt');
    await keyEvent('filter-key');
    const del = await api(server, server.runtimeKey, 'fa')('/delete', post({ path: 'one.txt' }));
    expect(del.status).toBe(200);
    // `test` delivers synchronously, outside the endpoint's queue, so it would overtake queued
    // deliveries still on their way: let those arrive first to make the order below defined.
    await all.waitForCount(4);
    const test = await ok<{ ok: boolean; event_id: string }>(
      admin(`${base()}/${hAll.webhook_id}/test`, { method: 'POST' }),
    );
    expect(test.ok).toBe(true);

    await all.waitFor((h) => h.some((x) => x.json.type === 'webhook.test') && h.length >= 5);
    expect(all.hits.map((h) => [h.json.type, h.json.namespace])).toEqual([
      ['file.written', 'fa'],
      ['file.written', 'fb'],
      ['key.created', null],
      ['file.deleted', 'fa'],
      ['webhook.test', null],
    ]);
    expect(all.hits[4]!.json.id).toBe(test.event_id);
    expect(all.hits[4]!.json.data).toEqual({ message: 'This is a test event from Trove.' });
    await nsA.waitForCount(2);
    await keys.waitForCount(1);
    expect(nsA.hits.map((h) => [h.json.type, h.json.data.path])).toEqual([
      ['file.written', 'workspace/one.txt'],
      ['file.deleted', 'workspace/one.txt'],
    ]);
    expect(keys.hits.map((h) => h.json.type)).toEqual(['key.created']);
    // The outbox is written with the event, so the logs are final now: nothing else was queued,
    // and the test event went to the tested endpoint only.
    expect((await deliveries(hA.webhook_id)).map((d) => d.event_type)).toEqual(['file.deleted', 'file.written']);
    expect((await deliveries(hKeys.webhook_id)).map((d) => d.event_type)).toEqual(['key.created']);
  });

  it('test reports a receiver failure as ok: false (not an HTTP error) and records it', async () => {
    const r = await receiver();
    r.respond = () => ({ status: 503 });
    const h = await createHook({ url: r.url(), events: ['key.created'] });
    const res = await ok<{
      ok: boolean;
      event_id: string;
      status: number | null;
      error: string | null;
      delivery_id: string;
    }>(
      admin(`${base()}/${h.webhook_id}/test`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '',
      }),
    );
    expect(res).toMatchObject({ ok: false, status: 503, error: 'Receiver answered HTTP 503: nope' });
    expect(res.event_id).toMatch(/^evt-/);
    // Delivered synchronously and not retried.
    expect(r.hits).toHaveLength(1);
    const d = await ok<DeliveryJson>(admin(`${base()}/${h.webhook_id}/deliveries/${res.delivery_id}`));
    expect(d).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_status_code: 503,
      event_type: 'webhook.test',
      next_attempt_at: null,
    });
    const w = await ok<WebhookJson>(admin(`${base()}/${h.webhook_id}`));
    expect(w).toMatchObject({
      last_delivery_ok: false,
      last_delivery_status: 503,
      consecutive_failures: 0,
      enabled: true,
    });
    // The test event is in the event log too.
    const ev = await ok<{ events: Array<{ id: string; type: string }> }>(
      admin(`/v1/workspaces/${server.workspaceId}/events?types=webhook.test&limit=1`),
    );
    expect(ev.events[0]!.id).toBe(res.event_id);

    // An unreachable receiver: status null, still a 200 answer.
    await r.close();
    receivers.splice(receivers.indexOf(r), 1);
    const down = await ok<{ ok: boolean; status: number | null; error: string | null }>(
      admin(`${base()}/${h.webhook_id}/test`, { method: 'POST' }),
    );
    expect(down).toMatchObject({ ok: false, status: null, error: 'Connection refused (ECONNREFUSED)' });
  });

  it('a receiver that fails 3 times then succeeds gets the event acknowledged once, with 4 attempts recorded', async () => {
    const r = await receiver();
    r.respond = (_hit, i) => ({ status: i < 3 ? 500 : 200 });
    const h = await createHook({ url: r.url(), events: ['key.created'] });
    await keyEvent('retry-me');
    await r.waitForCount(4);
    const [d] = await eventually(
      () => deliveries(h.webhook_id),
      (l) => l[0]?.status === 'delivered',
    );
    const detail = await ok<DeliveryJson>(admin(`${base()}/${h.webhook_id}/deliveries/${d!.delivery_id}`));
    expect(detail).toMatchObject({
      status: 'delivered',
      attempts: 4,
      last_status_code: 200,
      last_error: null,
      next_attempt_at: null,
    });
    expect(detail.delivered_at).toBe(detail.last_attempt_at);
    const history = detail.attempt_history!;
    expect(history.map((a) => a.status_code)).toEqual([500, 500, 500, 200]);
    expect(history.map((a) => a.error)).toEqual([
      'Receiver answered HTTP 500: nope',
      'Receiver answered HTTP 500: nope',
      'Receiver answered HTTP 500: nope',
      null,
    ]);
    // Each failure scheduled the next attempt (100, 200, 300 ms ±20 %); the success none.
    for (let i = 0; i < 3; i++) {
      // The delay runs from the end of the failed attempt; allow for the attempt itself and a slow machine.
      const gap = Date.parse(history[i]!.next_attempt_at!) - Date.parse(history[i]!.attempted_at);
      expect(gap).toBeGreaterThanOrEqual([80, 160, 240][i]!);
      expect(gap).toBeLessThanOrEqual([120, 240, 360][i]! + history[i]!.duration_ms + 1000);
      expect(Date.parse(history[i + 1]!.attempted_at)).toBeGreaterThanOrEqual(Date.parse(history[i]!.next_attempt_at!));
    }
    expect(history[3]!.next_attempt_at).toBeNull();
    // Exactly one 2xx-acknowledged request, all four for the same event.
    expect(new Set(r.hits.map((x) => x.json.id)).size).toBe(1);
    expect(r.hits.length).toBe(4);
    const w = await ok<WebhookJson>(admin(`${base()}/${h.webhook_id}`));
    expect(w).toMatchObject({ last_delivery_ok: true, last_delivery_status: 200, consecutive_failures: 0 });
  });

  it('keeps event order per endpoint, even across a retry', async () => {
    const r = await receiver();
    // The 3rd request fails once: everything after it must wait.
    r.respond = (_hit, i) => ({ status: i === 2 ? 500 : 200 });
    const h = await createHook({ url: r.url(), events: ['file.written'] });
    for (let i = 0; i < 12; i++) await write('order', `f${i}.txt`);
    await r.waitForCount(13);
    const paths = r.hits.map((x) => x.json.data.path);
    expect(paths).toEqual([
      'workspace/f0.txt',
      'workspace/f1.txt',
      'workspace/f2.txt',
      'workspace/f2.txt',
      ...Array.from({ length: 9 }, (_, i) => `workspace/f${i + 3}.txt`),
    ]);
    const list = await eventually(
      () => deliveries(h.webhook_id, '?limit=100'),
      (l) => l.every((d) => d.status === 'delivered'),
    );
    expect(list).toHaveLength(12);
    expect(list.every((d) => d.status === 'delivered')).toBe(true);
    expect(await deliveries(h.webhook_id, '?limit=3')).toHaveLength(3);
    expect(await deliveries(h.webhook_id, '?status=pending')).toEqual([]);
  });

  it('a hanging endpoint does not delay a healthy one by more than a second', async () => {
    const stuck = await receiver();
    stuck.respond = () => ({ hang: true });
    const healthy = await receiver();
    await createHook({ url: stuck.url(), events: ['file.written'] });
    await createHook({ url: healthy.url(), events: ['file.written'] });
    for (let i = 0; i < 5; i++) {
      const sent = Date.now();
      await write('hang', `h${i}.txt`);
      await healthy.waitForCount(i + 1, 5000);
      expect(healthy.hits[i]!.receivedAt - sent).toBeLessThan(1000);
    }
    // The stuck endpoint holds one attempt at a time (retried after its timeout); its other events wait their turn.
    expect(stuck.hits.length).toBeGreaterThanOrEqual(1);
    expect(new Set(stuck.hits.map((h) => h.json.data.path))).toEqual(new Set(['workspace/h0.txt']));
  });

  it('resends a delivered event on request', async () => {
    const r = await receiver();
    const h = await createHook({ url: r.url(), events: ['key.created'] });
    await keyEvent('resend');
    await r.waitForCount(1);
    const [d] = await eventually(
      () => deliveries(h.webhook_id),
      (l) => l[0]?.status === 'delivered',
    );
    const resent = await ok<DeliveryJson>(
      admin(`${base()}/${h.webhook_id}/deliveries/${d!.delivery_id}/resend`, { method: 'POST' }),
    );
    expect(resent).toMatchObject({ delivery_id: d!.delivery_id, event_id: d!.event_id });
    await r.waitForCount(2);
    expect(r.hits[1]!.json.id).toBe(r.hits[0]!.json.id);
    const after = await eventually(
      () => ok<DeliveryJson>(admin(`${base()}/${h.webhook_id}/deliveries/${d!.delivery_id}`)),
      (x) => x.status === 'delivered',
    );
    expect(after).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(await ok(admin(`${base()}/${h.webhook_id}/deliveries/dlv-nope/resend`, { method: 'POST' }), 404)).toEqual({
      detail: 'Delivery not found: dlv-nope',
      code: 'delivery_not_found',
    });
    expect(await ok(admin(`${base()}/${h.webhook_id}/deliveries/dlv-nope`), 404)).toEqual({
      detail: 'Delivery not found: dlv-nope',
      code: 'delivery_not_found',
    });
  });
});

describe('resend while an attempt is in flight', () => {
  it('sends the event again after the attempt on its way, instead of dropping the request', async () => {
    const r = await receiver();
    const held = gate();
    r.respond = (_hit, i) => (i === 0 ? { status: 200, after: held.promise } : { status: 200 });
    const h = await createHook({ url: r.url(), events: ['key.created'] });
    await keyEvent('in-flight');
    // The first attempt has reached the receiver and waits for its answer.
    await r.waitForCount(1);
    const [d] = await deliveries(h.webhook_id);
    expect(d).toMatchObject({ status: 'pending', attempts: 0 });
    const resent = await ok<DeliveryJson>(
      admin(`${base()}/${h.webhook_id}/deliveries/${d!.delivery_id}/resend`, { method: 'POST' }),
    );
    expect(resent).toMatchObject({ delivery_id: d!.delivery_id, status: 'pending' });
    held.open();
    await r.waitForCount(2);
    expect(r.hits.map((x) => x.json.id)).toEqual([d!.event_id, d!.event_id]);
    const after = await eventually(
      () => ok<DeliveryJson>(admin(`${base()}/${h.webhook_id}/deliveries/${d!.delivery_id}`)),
      (x) => x.status === 'delivered',
    );
    expect(after).toMatchObject({ status: 'delivered', attempts: 2, last_status_code: 200 });
    expect(after.attempt_history!.map((a) => a.status_code)).toEqual([200, 200]);
    // Exactly two: the marker was consumed by the first outcome.
    expect(r.hits).toHaveLength(2);
  });
});

describe('auto-disable', () => {
  let fast: StartedServer;
  afterAll(async () => {
    await fast?.close();
  });

  it('disables an endpoint after N failed deliveries in a row; PATCH enabled:true resumes and resets the streak', async () => {
    fast = await startServer({
      env: { TROVE_WEBHOOK_RETRY_SCHEDULE: '50', TROVE_WEBHOOK_MAX_AGE_MS: '150', TROVE_WEBHOOK_DISABLE_AFTER: '3' },
    });
    const fa = api(fast, fast.adminKey);
    const fbase = `/v1/workspaces/${fast.workspaceId}/webhooks`;
    const r = await receiver();
    // The first attempt is held until all five events exist: otherwise, on a slow machine, three
    // deliveries could fail and disable the endpoint before the last events are even created.
    const held = gate();
    r.respond = (_hit, i) => (i === 0 ? { status: 500, after: held.promise } : { status: 500 });
    const h = await ok<WebhookJson>(fa(fbase, post({ url: r.url(), events: ['key.created'] })), 201);
    for (let i = 0; i < 5; i++) await ok(fa(`/v1/workspaces/${fast.workspaceId}/keys`, post({ name: `d${i}` })), 201);
    held.open();

    let view: WebhookJson;
    const deadline = Date.now() + 20_000;
    for (;;) {
      view = await ok<WebhookJson>(fa(`${fbase}/${h.webhook_id}`));
      if (!view.enabled || Date.now() > deadline) break;
      // Each failed attempt reaches the receiver; look again after the next one (or 2 s).
      const seen = r.hits.length;
      await r.waitFor((hits) => hits.length > seen, 2000).catch(() => {});
    }
    expect(view).toMatchObject({
      enabled: false,
      consecutive_failures: 3,
      last_delivery_ok: false,
      last_delivery_status: 500,
    });
    expect(view.disabled_reason).toBe(
      'Disabled automatically after 3 consecutive failed deliveries (last error: Receiver answered HTTP 500: nope); re-enable with PATCH {"enabled": true}',
    );
    const logs = (await ok<{ deliveries: DeliveryJson[] }>(fa(`${fbase}/${h.webhook_id}/deliveries?limit=100`)))
      .deliveries;
    expect(logs.filter((d) => d.status === 'failed')).toHaveLength(3);
    expect(logs.filter((d) => d.status === 'pending')).toHaveLength(2);
    // Disabled: new events are not queued for it, and resend is refused.
    await ok(fa(`/v1/workspaces/${fast.workspaceId}/keys`, post({ name: 'while-off' })), 201);
    expect(
      (await ok<{ deliveries: DeliveryJson[] }>(fa(`${fbase}/${h.webhook_id}/deliveries?limit=100`))).deliveries,
    ).toHaveLength(5);
    const failed = logs.find((d) => d.status === 'failed')!;
    expect(
      (
        await ok<{ code: string }>(
          fa(`${fbase}/${h.webhook_id}/deliveries/${failed.delivery_id}/resend`, { method: 'POST' }),
          409,
        )
      ).code,
    ).toBe('conflict');

    // Re-enable with a healthy receiver: the streak resets and the pending backlog goes out.
    r.respond = () => ({ status: 200 });
    const back = await ok<WebhookJson>(fa(`${fbase}/${h.webhook_id}`, patch({ enabled: true })));
    expect(back).toMatchObject({ enabled: true, consecutive_failures: 0, disabled_reason: null });
    const before = r.hits.length;
    await r.waitForCount(before + 2);
    const okIds = new Set(r.hits.slice(before).map((x) => x.json.id));
    const pendingIds = logs.filter((d) => d.status === 'pending').map((d) => d.event_id);
    for (const id of pendingIds) expect(okIds.has(id)).toBe(true);
  });
});

describe('signing secrets', () => {
  it('never appear in the server log (debug level), after every test above', () => {
    expect(secretsShown.length).toBeGreaterThan(10);
    const log = server.output();
    // The log is not empty: the check would catch a secret if one were logged.
    expect(log).toContain('/webhooks');
    for (const secret of secretsShown) expect(log.includes(secret), 'a signing secret was logged').toBe(false);
  });
});
