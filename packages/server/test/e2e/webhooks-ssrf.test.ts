/**
 * The SSRF guard on a server without TROVE_WEBHOOK_ALLOW_PRIVATE: private and
 * loopback targets are refused when an endpoint is created or changed, and
 * again at delivery time (an endpoint created while they were allowed). More
 * on hosts that do not resolve in test/webhooks/dns-e2e.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { Receiver } from './webhooks-receiver.js';

let server: StartedServer;
beforeAll(async () => {
  server = await startServer({ env: { TROVE_WEBHOOK_ALLOW_PRIVATE: '0' } });
});
afterAll(async () => {
  await server?.close();
});

const create = (s: StartedServer, url: string) =>
  api(s, s.adminKey)(`/v1/workspaces/${s.workspaceId}/webhooks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url, events: ['*'] }),
  });

const HINT =
  'webhooks may only target public addresses (the operator setting TROVE_WEBHOOK_ALLOW_PRIVATE=1 allows private ones for development)';

describe('SSRF guard', () => {
  it.each([
    ['http://127.0.0.1:8080/hook', 'url: Refused: 127.0.0.1 is a loopback address; ' + HINT],
    ['http://[::1]/hook', 'url: Refused: ::1 is a loopback address; ' + HINT],
    ['http://[::ffff:127.0.0.1]/hook', 'url: Refused: ::ffff:7f00:1 is a IPv4-mapped loopback address; ' + HINT],
    [
      'http://169.254.169.254/latest/meta-data/',
      'url: Refused: 169.254.169.254 is a link-local (cloud metadata) address; ' + HINT,
    ],
    ['http://10.1.2.3/', 'url: Refused: 10.1.2.3 is a private network address; ' + HINT],
    ['http://192.168.0.1/', 'url: Refused: 192.168.0.1 is a private network address; ' + HINT],
    ['http://100.64.0.1/', 'url: Refused: 100.64.0.1 is a carrier-grade NAT address; ' + HINT],
    ['http://0.0.0.0:80/', 'url: Refused: 0.0.0.0 is a unspecified ("this network") address; ' + HINT],
    ['http://[fd00::1]/', 'url: Refused: fd00::1 is a unique local (private network) address; ' + HINT],
    ['http://2130706433/', 'url: Refused: 127.0.0.1 is a loopback address; ' + HINT],
    ['http://localhost:8080/hook', 'url: Refused: localhost resolves to 127.0.0.1, a loopback address; ' + HINT],
  ])('refuses %s at create', async (url, detail) => {
    const res = await create(server, url);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { detail: string; code: string };
    expect(body.code).toBe('bad_request');
    // localhost may resolve to ::1 first on some hosts.
    if (url.includes('localhost'))
      expect(body.detail).toMatch(/^url: Refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address; /);
    else expect(body.detail).toBe(detail);
  });

  it('accepts a host name that does not resolve yet, with a warning (deliveries check it again)', async () => {
    const res = await create(server, 'https://no-such-host.invalid/hook');
    expect(res.status).toBe(201);
    const body = (await res.json()) as { warnings: Array<{ code: string; detail: string }> };
    expect(body.warnings).toHaveLength(1);
    expect(body.warnings[0]!.code).toBe('dns_unresolved');
    expect(body.warnings[0]!.detail).toMatch(/^url: DNS lookup of no-such-host\.invalid failed \(\w+/);
  });

  it('refuses changing an endpoint to a private URL', async () => {
    // Created while private targets were allowed (another server on the same data dir).
    const receiver = await Receiver.start();
    const open = await startServer({ env: { TROVE_WEBHOOK_ALLOW_PRIVATE: '1' } });
    try {
      const res = await create(open, receiver.url());
      expect(res.status).toBe(201);
      const hook = (await res.json()) as { webhook_id: string };
      await open.stop();
      const strict = await open.restart({ TROVE_WEBHOOK_ALLOW_PRIVATE: '0' });
      try {
        const admin = api(strict, strict.adminKey);
        const base = `/v1/workspaces/${strict.workspaceId}/webhooks/${hook.webhook_id}`;
        const patched = await admin(base, {
          method: 'PATCH',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ url: 'http://10.0.0.1/x' }),
        });
        expect(patched.status).toBe(400);

        // At delivery time the same guard refuses the existing loopback URL, before connecting.
        const key = await admin(`/v1/workspaces/${strict.workspaceId}/keys`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'trigger' }),
        });
        expect(key.status).toBe(201);
        let last: { attempts: number; last_error: string | null; status: string } | undefined;
        const deadline = Date.now() + 15_000;
        while (Date.now() < deadline) {
          const list = await admin(`${base}/deliveries`);
          last = (
            (await list.json()) as {
              deliveries: Array<{ attempts: number; last_error: string | null; status: string }>;
            }
          ).deliveries[0];
          if (last && last.attempts >= 2) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(last).toMatchObject({
          status: 'pending',
          last_error: 'Refused: 127.0.0.1 is a loopback address; ' + HINT,
        });
        expect(receiver.hits).toHaveLength(0);
        const test = await admin(`${base}/test`, { method: 'POST' });
        expect(await test.json()).toMatchObject({
          ok: false,
          status: null,
          error: 'Refused: 127.0.0.1 is a loopback address; ' + HINT,
        });
        expect(receiver.hits).toHaveLength(0);
      } finally {
        await strict.close();
      }
    } finally {
      await receiver.close();
    }
  }, 120_000);
});
