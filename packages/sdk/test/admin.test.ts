/** TroveAdminClient against the real server: keys, webhooks and their delivery log, namespaces, signup. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../../../test/helpers/server.js';
import {
  AuthenticationError,
  BadRequestError,
  NotFoundError,
  PermissionDeniedError,
  TroveAdminClient,
  TroveClient,
  createWorkspace,
  verifyWebhook,
  verifyWebhookAsync,
} from '../src/index.js';
import { json, startPeer, type Peer } from './helpers/peer.js';

let server: StartedServer;
let admin: TroveAdminClient;
let trove: TroveClient;
let receiver: Peer;
let receiverStatus = 200;

beforeAll(async () => {
  server = await startServer({ env: { TROVE_ALLOW_SIGNUP: '1' } });
  admin = new TroveAdminClient({ apiKey: server.adminKey, baseUrl: server.baseUrl });
  trove = new TroveClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl, namespace: 'admin-test' });
  receiver = await startPeer((_req, res) => json(res, receiverStatus, { received: true }));
});
afterAll(async () => {
  await receiver?.close();
  await server?.close();
});

/** Polls `check` until it returns a value (deliveries are asynchronous). */
async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('keys', () => {
  it('create / list / revoke', async () => {
    const created = await admin.createKey('ci-runner');
    expect(created).toEqual({
      keyId: expect.stringMatching(/^key-/),
      name: 'ci-runner',
      prefix: created.apiKey.slice(0, 12),
      scope: 'workspace',
      namespace: null,
      createdAt: expect.any(String),
      apiKey: expect.stringMatching(/^trove-sk-/),
    });
    const scoped = await admin.keys.create('agent', { namespace: 'agent-ns' });
    expect(scoped).toMatchObject({ scope: 'workspace', namespace: 'agent-ns' });
    const adminKey = await admin.createKey('second-admin', { admin: true });
    expect(adminKey.scope).toBe('admin');
    await expect(admin.createKey('bad', { admin: true, namespace: 'x' })).rejects.toBeInstanceOf(BadRequestError);

    const listed = await admin.listKeys();
    const mine = listed.find((k) => k.keyId === created.keyId);
    expect(mine).toEqual({
      keyId: created.keyId,
      name: 'ci-runner',
      prefix: created.prefix,
      scope: 'workspace',
      namespace: null,
      createdAt: created.createdAt,
    });
    expect(listed.map((k) => k.keyId)).toEqual(expect.arrayContaining([scoped.keyId, adminKey.keyId]));

    const user = new TroveClient({ apiKey: created.apiKey, baseUrl: server.baseUrl, namespace: 'n' });
    await user.write('ok.txt', 'works');
    expect(await admin.revokeKey(created.keyId)).toEqual({ keyId: created.keyId, revoked: true });
    await expect(user.readText('ok.txt')).rejects.toBeInstanceOf(AuthenticationError);
    expect((await admin.listKeys()).some((k) => k.keyId === created.keyId)).toBe(false);
    await expect(admin.revokeKey(created.keyId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(admin.keys.revoke('key-0000000000000000')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('uses a given workspaceId without asking /v1/me', async () => {
    const urls: string[] = [];
    const counting: typeof fetch = (input, init) => {
      urls.push(String(input));
      return fetch(input, init);
    };
    const direct = new TroveAdminClient({
      apiKey: server.adminKey,
      baseUrl: server.baseUrl,
      workspaceId: server.workspaceId,
      fetch: counting,
    });
    await direct.listKeys();
    expect(urls).toEqual([`${server.baseUrl}/v1/workspaces/${server.workspaceId}/keys`]);
    // Discovery happens once and is cached.
    const discovering = new TroveAdminClient({ apiKey: server.adminKey, baseUrl: server.baseUrl, fetch: counting });
    urls.length = 0;
    await discovering.listKeys();
    await discovering.listWebhooks();
    expect(urls.filter((u) => u.endsWith('/v1/me'))).toHaveLength(1);
    expect(await discovering.getWorkspaceId()).toBe(server.workspaceId);
  });
});

describe('environment', () => {
  it('reads TROVE_ADMIN_API_KEY (else TROVE_API_KEY), TROVE_WORKSPACE_ID and TROVE_BASE_URL', async () => {
    const saved = { ...process.env };
    try {
      process.env.TROVE_ADMIN_API_KEY = server.adminKey;
      process.env.TROVE_API_KEY = server.runtimeKey;
      process.env.TROVE_BASE_URL = server.baseUrl;
      process.env.TROVE_WORKSPACE_ID = server.workspaceId;
      const urls: string[] = [];
      const fromEnv = new TroveAdminClient({
        fetch: (input, init) => {
          urls.push(String(input));
          return fetch(input, init);
        },
      });
      expect(fromEnv.baseUrl).toBe(server.baseUrl);
      expect((await fromEnv.listKeys()).length).toBeGreaterThan(0);
      // The workspace id came from the environment: no /v1/me round trip.
      expect(urls).toEqual([`${server.baseUrl}/v1/workspaces/${server.workspaceId}/keys`]);

      delete process.env.TROVE_ADMIN_API_KEY;
      const fallback = new TroveAdminClient();
      expect((await fallback.me()).scope).toBe('workspace');
      delete process.env.TROVE_API_KEY;
      expect(() => new TroveAdminClient()).toThrow(/TROVE_ADMIN_API_KEY/);
    } finally {
      process.env = saved;
    }
  });
});

describe('webhooks', () => {
  it('create / list / test / update / delete, with verifiable signatures', async () => {
    const hook = await admin.createWebhook({
      url: `${receiver.url}/hooks`,
      events: ['file.written'],
      description: 'sdk test',
    });
    expect(hook).toEqual({
      webhookId: expect.stringMatching(/^wh-/),
      url: `${receiver.url}/hooks`,
      events: ['file.written'],
      namespace: null,
      // Any source (the files API's changes and commands' alike).
      sources: null,
      description: 'sdk test',
      enabled: true,
      createdAt: expect.any(String),
      signingSecret: expect.stringMatching(/^trove-whsec-/),
      lastDeliveryOk: null,
      lastDeliveryAt: null,
      lastDeliveryStatus: null,
      disabledReason: null,
      consecutiveFailures: 0,
    });
    const { signingSecret: _secret, ...withoutSecret } = hook;
    const listed = (await admin.listWebhooks()).find((w) => w.webhookId === hook.webhookId)!;
    expect(listed).toEqual(withoutSecret);
    expect(await admin.retrieveWebhook(hook.webhookId)).toEqual(withoutSecret);

    const before = receiver.requests.length;
    const test = await admin.testWebhook(hook.webhookId);
    expect(test).toEqual({
      ok: true,
      eventId: expect.stringMatching(/^evt-/),
      status: 200,
      error: null,
      deliveryId: expect.any(String),
    });
    const afterTest = await admin.webhooks.retrieve(hook.webhookId);
    expect(afterTest).toMatchObject({
      lastDeliveryOk: true,
      lastDeliveryStatus: 200,
      lastDeliveryAt: expect.any(String),
    });
    const delivery = receiver.requests[before]!;
    expect(delivery.headers['x-trove-event']).toBe('webhook.test');
    expect(delivery.headers['x-trove-event-id']).toBe(test.eventId);
    const event = verifyWebhook({ secret: hook.signingSecret, body: delivery.body, headers: delivery.headers });
    expect(event).toMatchObject({ id: test.eventId, type: 'webhook.test', workspaceId: server.workspaceId });
    const viaWebCrypto = await verifyWebhookAsync({
      secret: hook.signingSecret,
      body: delivery.body.toString('utf8'),
      signatureHeader: delivery.headers['x-trove-signature'],
    });
    expect(viaWebCrypto).toEqual(event);

    receiverStatus = 500;
    try {
      const failed = await admin.webhooks.test(hook.webhookId);
      expect(failed).toMatchObject({ ok: false, status: 500 });
    } finally {
      receiverStatus = 200;
    }

    const disabled = await admin.updateWebhook(hook.webhookId, { enabled: false });
    expect(disabled).toMatchObject({ webhookId: hook.webhookId, enabled: false, description: 'sdk test' });
    const changed = await admin.webhooks.update(hook.webhookId, {
      enabled: true,
      description: 'renamed',
      events: ['*'],
    });
    expect(changed).toMatchObject({ enabled: true, description: 'renamed', events: ['*'], url: hook.url });

    expect(await admin.deleteWebhook(hook.webhookId)).toEqual({ webhookId: hook.webhookId, deleted: true });
    expect((await admin.listWebhooks()).some((w) => w.webhookId === hook.webhookId)).toBe(false);
    await expect(admin.deleteWebhook(hook.webhookId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(admin.testWebhook(hook.webhookId)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('delivery log: list and resend', async () => {
    const hook = await admin.webhooks.create({
      url: `${receiver.url}/log`,
      events: ['file.written'],
      namespace: 'admin-test',
    });
    expect(hook.events).toEqual(['file.written']);
    await trove.write('delivered.txt', 'x');
    const delivered = await eventually(async () => {
      const list = await admin.listWebhookDeliveries(hook.webhookId);
      return list.find((d) => d.status === 'delivered');
    }, 'a delivered delivery');
    expect(delivered).toEqual({
      deliveryId: expect.any(String),
      webhookId: hook.webhookId,
      eventId: expect.stringMatching(/^evt-/),
      eventType: 'file.written',
      status: 'delivered',
      attempts: 1,
      lastStatusCode: 200,
      lastError: null,
      lastAttemptAt: expect.any(String),
      nextAttemptAt: null,
      deliveredAt: expect.any(String),
      createdAt: expect.any(String),
    });
    const received = receiver.requests.filter((r) => r.url === '/log');
    expect(received).toHaveLength(1);
    const body = verifyWebhook({ secret: hook.signingSecret, body: received[0]!.body, headers: received[0]!.headers });
    expect(body).toMatchObject({
      id: delivered.eventId,
      type: 'file.written',
      data: { path: 'workspace/delivered.txt' },
    });

    const resent = await admin.resendWebhookDelivery(hook.webhookId, delivered.deliveryId);
    expect(resent).toMatchObject({ deliveryId: delivered.deliveryId, eventId: delivered.eventId, status: 'pending' });
    await eventually(
      () => (receiver.requests.filter((r) => r.url === '/log').length === 2 ? true : undefined),
      'the resend',
    );
    const again = receiver.requests.filter((r) => r.url === '/log')[1]!;
    expect(again.headers['x-trove-event-id']).toBe(delivered.eventId);

    const limited = await admin.webhooks.listDeliveries(hook.webhookId, { limit: 1 });
    expect(limited).toHaveLength(1);
    expect(await admin.listWebhookDeliveries(hook.webhookId, { status: 'failed' })).toEqual([]);

    const detail = await eventually(async () => {
      const d = await admin.retrieveWebhookDelivery(hook.webhookId, delivered.deliveryId);
      return d.status === 'delivered' && d.attemptHistory.length === 2 ? d : undefined;
    }, 'the resent delivery to be recorded');
    expect(detail.attemptHistory[0]).toEqual({
      attemptedAt: expect.any(String),
      statusCode: 200,
      error: null,
      durationMs: expect.any(Number),
      nextAttemptAt: null,
    });
    await expect(admin.webhooks.retrieveDelivery(hook.webhookId, 'dlv-unknown')).rejects.toBeInstanceOf(NotFoundError);
    await expect(admin.resendWebhookDelivery(hook.webhookId, 'dlv-unknown')).rejects.toBeInstanceOf(NotFoundError);
    await admin.deleteWebhook(hook.webhookId);
  });

  it('a workspace key cannot manage webhooks', async () => {
    const asRuntime = new TroveAdminClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl });
    await expect(asRuntime.createWebhook({ url: receiver.url })).rejects.toBeInstanceOf(PermissionDeniedError);
  });
});

describe('namespaces', () => {
  it('list and delete', async () => {
    const ns = trove.withNamespace('doomed');
    await ns.write('a.txt', 'a');
    const list = await admin.listNamespaces();
    const doomed = list.find((n) => n.name === 'doomed');
    expect(doomed).toEqual({
      name: 'doomed',
      createdAt: expect.any(String),
      lastActivityAt: expect.any(String),
      sizeBytes: 1,
      fileCount: 1,
    });
    // Any workspace key may list namespaces; deleting one takes an admin key.
    expect((await trove.namespaces.list()).some((n) => n.name === 'doomed')).toBe(true);
    await expect(trove.namespaces.delete('doomed')).rejects.toBeInstanceOf(PermissionDeniedError);
    expect(await admin.deleteNamespace('doomed')).toEqual({ namespace: 'doomed', deleted: true });
    expect((await admin.namespaces.list()).some((n) => n.name === 'doomed')).toBe(false);
    await expect(ns.readText('a.txt')).rejects.toBeInstanceOf(NotFoundError);
    const events = await admin.events.list({ types: ['namespace.deleted'] });
    expect(events.events[0]).toMatchObject({ type: 'namespace.deleted', data: { namespace: 'doomed' } });
    await expect(admin.deleteNamespace('never-used')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('createWorkspace (open signup)', () => {
  it('creates a workspace whose keys work', async () => {
    const ws = await createWorkspace('signup-test', { baseUrl: server.baseUrl });
    expect(ws).toEqual({
      workspaceId: expect.stringMatching(/^ws-/),
      name: 'signup-test',
      apiKey: expect.stringMatching(/^trove-sk-/),
      adminApiKey: expect.stringMatching(/^trove-sk-/),
    });
    const me = await new TroveClient({ apiKey: ws.apiKey, baseUrl: server.baseUrl }).me();
    expect(me).toMatchObject({ workspaceId: ws.workspaceId, scope: 'workspace' });
    const newAdmin = new TroveAdminClient({ apiKey: ws.adminApiKey!, baseUrl: server.baseUrl });
    expect((await newAdmin.me()).scope).toBe('admin');
  });

  it('is refused when the server has signup disabled', async () => {
    const closed = await startServer();
    try {
      await expect(createWorkspace('nope', { baseUrl: closed.baseUrl })).rejects.toBeInstanceOf(PermissionDeniedError);
    } finally {
      await closed.close();
    }
  });
});
