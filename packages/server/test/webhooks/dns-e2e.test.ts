/**
 * Webhook URLs whose host does not resolve, on the real server with the SSRF
 * guard on: creation and URL changes are accepted with a `dns_unresolved`
 * warning, deliveries fail with a clear error and are retried; literal and
 * resolved private addresses are still refused. `.invalid` never resolves
 * (RFC 2606), so no test here depends on a live DNS record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startServer, type StartedServer } from '../../../../test/helpers/server.js';
import { eventually } from '../e2e/webhooks-receiver.js';
import { ok } from '../../../../test/helpers/http.js';

let server: StartedServer;
let admin: ReturnType<typeof api>;

beforeAll(async () => {
  server = await startServer({
    env: { TROVE_WEBHOOK_ALLOW_PRIVATE: '0', TROVE_WEBHOOK_RETRY_SCHEDULE: '100,200,300' },
  });
  admin = api(server, server.adminKey);
});
afterAll(async () => {
  await server?.close();
});

interface Warning {
  code: string;
  detail: string;
}
interface HookJson {
  webhook_id: string;
  url: string;
  enabled: boolean;
  signing_secret?: string;
  warnings?: Warning[];
  last_delivery_ok: boolean | null;
  last_delivery_status: number | null;
}
interface AttemptJson {
  status_code: number | null;
  error: string | null;
  next_attempt_at: string | null;
}
interface DeliveryJson {
  delivery_id: string;
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  attempt_history?: AttemptJson[];
}

const base = () => `/v1/workspaces/${server.workspaceId}/webhooks`;
const send = (method: string, body: unknown) => ({
  method,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/** The resolver's code varies with the machine (ENOTFOUND, or EAI_AGAIN without a reachable resolver). */
const unresolved = (host: string) =>
  new RegExp(`^DNS lookup of ${host.replace(/\./g, '\\.')} failed \\([A-Z_]+(: [^)]+)?\\)$`);
const SAVED_ANYWAY =
  '. The webhook was saved anyway: each delivery attempt resolves the host again (private addresses are still refused) ' +
  'and fails, to be retried, until it resolves; see the delivery log';

function expectUnresolvedWarning(warnings: Warning[] | undefined, host: string): void {
  expect(warnings).toHaveLength(1);
  const [w] = warnings!;
  expect(w!.code).toBe('dns_unresolved');
  expect(w!.detail.startsWith('url: ') && w!.detail.endsWith(SAVED_ANYWAY), w!.detail).toBe(true);
  expect(w!.detail.slice('url: '.length, -SAVED_ANYWAY.length)).toMatch(unresolved(host));
}

const HINT =
  'webhooks may only target public addresses (the operator setting TROVE_WEBHOOK_ALLOW_PRIVATE=1 allows private ones for development)';

describe('webhook URLs and DNS, with the SSRF guard on', () => {
  let hook: HookJson;

  it('creates a webhook whose host does not resolve, and says so', async () => {
    hook = await ok<HookJson>(
      admin(base(), send('POST', { url: 'https://does-not-exist.invalid/hook', events: ['*'] })),
      201,
    );
    expect(hook).toMatchObject({ url: 'https://does-not-exist.invalid/hook', enabled: true });
    expect(hook.signing_secret).toMatch(/^trove-whsec-/);
    expectUnresolvedWarning(hook.warnings, 'does-not-exist.invalid');

    // The endpoint is stored like any other; the warning belongs to the answer only.
    const got = await ok<HookJson>(admin(`${base()}/${hook.webhook_id}`), 200);
    expect(got).toMatchObject({
      webhook_id: hook.webhook_id,
      url: 'https://does-not-exist.invalid/hook',
      enabled: true,
    });
    expect(got).not.toHaveProperty('warnings');
    const { webhooks } = await ok<{ webhooks: HookJson[] }>(admin(base()), 200);
    expect(webhooks.map((w) => w.webhook_id)).toContain(hook.webhook_id);
  });

  it.each([
    ['http://127.0.0.1/', `url: Refused: 127.0.0.1 is a loopback address; ${HINT}`],
    ['http://[::1]/', `url: Refused: ::1 is a loopback address; ${HINT}`],
    ['http://10.0.0.1/', `url: Refused: 10.0.0.1 is a private network address; ${HINT}`],
    ['http://localhost:8080/hook', null],
  ])('still refuses %s', async (url, detail) => {
    const before = (await ok<{ webhooks: HookJson[] }>(admin(base()), 200)).webhooks.length;
    const body = await ok<{ code: string; detail: string }>(admin(base(), send('POST', { url })), 400);
    expect(body.code).toBe('bad_request');
    // localhost may resolve to ::1 first on some hosts.
    if (detail === null)
      expect(body.detail).toMatch(/^url: Refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address; /);
    else expect(body.detail).toBe(detail);
    expect((await ok<{ webhooks: HookJson[] }>(admin(base()), 200)).webhooks).toHaveLength(before);
  });

  it('logs each delivery attempt to the unresolvable host as failed, with the DNS error, and retries it', async () => {
    // Any event fans out to the "*" endpoint: a key.created.
    await ok(admin(`/v1/workspaces/${server.workspaceId}/keys`, send('POST', { name: 'trigger' })), 201);
    const list = await eventually(
      async () =>
        (await ok<{ deliveries: DeliveryJson[] }>(admin(`${base()}/${hook.webhook_id}/deliveries`), 200)).deliveries,
      (d) => d.length > 0 && d[0]!.attempts >= 2,
    );
    const [d] = list;
    expect(d!.attempts).toBeGreaterThanOrEqual(2);
    // Still pending: DNS may start answering, so it is retried per the backoff like any connection error.
    expect(d).toMatchObject({ status: 'pending', last_status_code: null });
    expect(d!.next_attempt_at).not.toBeNull();
    expect(d!.last_error).toMatch(unresolved('does-not-exist.invalid'));

    const detail = await ok<DeliveryJson>(admin(`${base()}/${hook.webhook_id}/deliveries/${d!.delivery_id}`), 200);
    expect(detail.attempt_history!.length).toBeGreaterThanOrEqual(2);
    for (const a of detail.attempt_history!) {
      expect(a.status_code).toBeNull();
      expect(a.error).toMatch(unresolved('does-not-exist.invalid'));
      expect(a.next_attempt_at).not.toBeNull();
    }
    const after = await ok<HookJson>(admin(`${base()}/${hook.webhook_id}`), 200);
    expect(after).toMatchObject({ enabled: true, last_delivery_ok: false, last_delivery_status: null });
  });

  it('reports the DNS error from the test call instead of failing it', async () => {
    const res = await ok<{ ok: boolean; status: number | null; error: string }>(
      admin(`${base()}/${hook.webhook_id}/test`, { method: 'POST' }),
      200,
    );
    expect(res).toMatchObject({ ok: false, status: null });
    expect(res.error).toMatch(unresolved('does-not-exist.invalid'));
  });

  it('accepts a URL change to a host that does not resolve, with the warning; refuses a private one', async () => {
    const url = `${base()}/${hook.webhook_id}`;
    const moved = await ok<HookJson>(admin(url, send('PATCH', { url: 'https://still-not-there.invalid/x' })), 200);
    expect(moved.url).toBe('https://still-not-there.invalid/x');
    expectUnresolvedWarning(moved.warnings, 'still-not-there.invalid');

    expect(await ok<HookJson>(admin(url, send('PATCH', { description: 'd' })), 200)).not.toHaveProperty('warnings');

    const refused = await ok<{ code: string; detail: string }>(
      admin(url, send('PATCH', { url: 'http://localhost/' })),
      400,
    );
    expect(refused.code).toBe('bad_request');
    expect(refused.detail).toMatch(/^url: Refused: localhost resolves to /);
    expect((await ok<HookJson>(admin(url), 200)).url).toBe('https://still-not-there.invalid/x');
  });
});
