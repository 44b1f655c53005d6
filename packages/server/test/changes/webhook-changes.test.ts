/**
 * Commands' changes reach webhooks like every other event (the same log, the same outbox): durable, in
 * order, signed; an endpoint can ask for them alone (`sources: ["exec"]`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { Receiver } from '../e2e/webhooks-receiver.js';
import { client } from './support.js';

const hasBwrap = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => existsSync(p));

describe.skipIf(!hasBwrap)('webhooks and the changes made by commands', () => {
  let server: StartedServer;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await Receiver.start();
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
    await receiver?.close();
  });

  const createHook = async (body: Record<string, unknown>) => {
    const c = client(server, 'hooks');
    return c.admin(`/v1/workspaces/${server.workspaceId}/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  };

  it('an endpoint with sources ["exec"] receives the commands\' changes, in order, and not the files API\'s', async () => {
    const res = await createHook({ url: receiver.url('/exec-only'), namespace: 'hooks', sources: ['exec'] });
    expect(res.status).toBe(201);
    const hook = (await res.json()) as { webhook_id: string; sources: string[] | null };
    expect(hook.sources).toEqual(['exec']);
    const c = client(server, 'hooks');
    await c.write('from-api.txt', 'x');
    await c.exec('cd workspace && for i in 1 2 3; do echo $i > n$i; done; rm n2');
    const hits = await receiver.waitFor((h) => h.filter((x) => x.path === '/exec-only').length >= 2);
    const mine = hits
      .filter((h) => h.path === '/exec-only')
      .map((h) => [h.json.type, h.json.data.path, h.json.data.source]);
    expect(mine).toEqual([
      ['file.written', 'workspace/n1', 'exec'],
      ['file.written', 'workspace/n3', 'exec'],
    ]);
    for (const h of hits.filter((x) => x.path === '/exec-only'))
      expect(h.headers['x-trove-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const listed = (await (await c.admin(`/v1/workspaces/${server.workspaceId}/webhooks`)).json()) as {
      webhooks: Array<{ webhook_id: string; sources: string[] | null }>;
    };
    expect(listed.webhooks.find((w) => w.webhook_id === hook.webhook_id)!.sources).toEqual(['exec']);
  });

  it('refuses an unknown source, and an empty list, with a clear 422 (validation_failed, as for events)', async () => {
    const bad = await createHook({ url: receiver.url(), sources: ['robot'] });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { detail: string }).detail).toBe(
      'sources: unknown source "robot" (known: exec, api, write, upload; exec: changes made by commands, api: the files API\'s)',
    );
    const empty = await createHook({ url: receiver.url(), sources: [] });
    expect(empty.status).toBe(422);
    expect(((await empty.json()) as { detail: string }).detail).toBe(
      'sources: must be null (any event) or a non-empty array of exec, api, write, upload',
    );
  });
});
