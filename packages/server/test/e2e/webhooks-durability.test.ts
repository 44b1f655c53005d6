/**
 * Durability of the webhook outbox: deliveries survive kill -9 and a restart,
 * none lost and none acknowledged twice.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { eventually, Receiver } from './webhooks-receiver.js';

const servers: StartedServer[] = [];
const receivers: Receiver[] = [];
afterAll(async () => {
  for (const r of receivers) await r.close().catch(() => {});
  for (const s of servers.reverse()) await s.close().catch(() => {});
});

describe('webhook durability', () => {
  it('kill -9 with 200 pending deliveries (receiver down), restart, receiver up: all 200 arrive once, in order', async () => {
    // Reserve a port, then take the receiver down so every attempt fails.
    const probe = await Receiver.start();
    const port = probe.port;
    await probe.close();

    const env = { TROVE_WEBHOOK_RETRY_SCHEDULE: '100,200,300' };
    const first = await startServer({ env });
    servers.push(first);
    const admin = api(first, first.adminKey);
    const created = await admin(`/v1/workspaces/${first.workspaceId}/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: `http://127.0.0.1:${port}/hook`, events: ['file.written'] }),
    });
    expect(created.status).toBe(201);
    const hook = (await created.json()) as { webhook_id: string };

    const write = api(first, first.runtimeKey, 'durable');
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const n = batch * 10 + i;
          const res = await write('/write', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ path: `f${String(n).padStart(3, '0')}.txt`, content: String(n) }),
          });
          expect(res.status).toBe(200);
        }),
      );
    }
    // The head delivery has been failing (connection refused) meanwhile.
    const before = await admin(
      `/v1/workspaces/${first.workspaceId}/webhooks/${hook.webhook_id}/deliveries?limit=100&status=delivered`,
    );
    expect(((await before.json()) as { deliveries: unknown[] }).deliveries).toEqual([]);
    const events = await admin(`/v1/workspaces/${first.workspaceId}/events?types=file.written&limit=200`);
    const order = ((await events.json()) as { events: Array<{ id: string }> }).events.map((e) => e.id).reverse();
    expect(order).toHaveLength(200);

    await first.kill('SIGKILL');
    expect(first.proc.signalCode).toBe('SIGKILL');

    const receiver = new Receiver();
    await receiver.listen(port);
    receivers.push(receiver);
    const second = await first.restart();
    servers.push(second);

    await receiver.waitForCount(200, 60_000);
    const ids = receiver.hits.map((h) => h.json.id);
    expect(ids).toEqual(order);
    // Nothing more is pending, and nothing was sent twice.
    const pending = await eventually(
      async () => {
        const res = await api(
          second,
          second.adminKey,
        )(`/v1/workspaces/${second.workspaceId}/webhooks/${hook.webhook_id}/deliveries?limit=100&status=pending`);
        return ((await res.json()) as { deliveries: unknown[] }).deliveries;
      },
      (l) => l.length === 0,
    );
    expect(pending).toEqual([]);
    expect(new Set(ids).size).toBe(200);
    expect(receiver.hits).toHaveLength(200);
  }, 180_000);

  it('a graceful restart resumes retries where they were', async () => {
    const receiver = await Receiver.start();
    receivers.push(receiver);
    receiver.respond = () => ({ status: 500 });
    const env = { TROVE_WEBHOOK_RETRY_SCHEDULE: '100' };
    const first = await startServer({ env });
    servers.push(first);
    const admin = api(first, first.adminKey);
    const res = await admin(`/v1/workspaces/${first.workspaceId}/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: receiver.url(), events: ['key.created'] }),
    });
    expect(res.status).toBe(201);
    await admin(`/v1/workspaces/${first.workspaceId}/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'survives' }),
    });
    await receiver.waitForCount(2);
    await first.stop();
    const failedSoFar = receiver.hits.length;
    receiver.respond = () => ({ status: 200 });
    const second = await first.restart();
    servers.push(second);
    await receiver.waitFor((h) => h.length > failedSoFar && h[h.length - 1]!.json.type === 'key.created');
    const eventIds = new Set(receiver.hits.map((h) => h.json.id));
    expect(eventIds.size).toBe(1);
  });
});
