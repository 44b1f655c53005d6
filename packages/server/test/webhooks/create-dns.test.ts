/**
 * The SSRF check when an endpoint is created or its URL changed, with a fake
 * resolver: refused addresses (literal, resolved, or mixed with public ones)
 * are refused; a host that does not resolve now is accepted with a warning.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openStore, type Store } from '../../src/db/index.js';
import { AppError } from '../../src/errors.js';
import { LocalEventBus } from '../../src/events/bus.js';
import { EventService } from '../../src/events/service.js';
import { nowIso } from '../../src/ids.js';
import { DeliverySender } from '../../src/webhooks/deliver.js';
import { WebhookRepo } from '../../src/webhooks/repository.js';
import { SecretBox } from '../../src/webhooks/secret-box.js';
import { WebhookService } from '../../src/webhooks/service.js';
import type { Resolver } from '../../src/webhooks/ssrf.js';

const HINT =
  'webhooks may only target public addresses (the operator setting TROVE_WEBHOOK_ALLOW_PRIVATE=1 allows private ones for development)';

const table: Record<string, string[]> = {
  'public.test': ['93.184.216.34'],
  'mixed.test': ['93.184.216.34', '10.0.0.5'],
  'mixed6.test': ['2606:4700::1', 'fe80::1'],
  'loop.test': ['127.0.0.1'],
};
const lookups: string[] = [];
const resolve: Resolver = async (host) => {
  lookups.push(host);
  if (host === 'hang.test') return new Promise(() => {});
  if (host === 'down.test') throw Object.assign(new Error('temporary failure'), { code: 'EAI_AGAIN' });
  const addrs = table[host];
  if (!addrs) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  return addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }) as const);
};

let dataDir: string;
let store: Store;
let sender: DeliverySender;
let service: WebhookService;
let lenient: WebhookService;
const ws = 'ws-' + randomBytes(8).toString('hex');

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'trove-create-dns-'));
  store = await openStore({ dataDir, databaseUrl: null });
  const events = new EventService(store.db, new LocalEventBus(), store.sqliteSync);
  const repo = new WebhookRepo(store);
  const secrets = await SecretBox.open(dataDir);
  sender = new DeliverySender({ allowPrivate: false, timeoutMs: 1000, resolve });
  const deps = { repo, secrets, sender, events, version: 'test', onWork: () => {}, resolve, dnsTimeoutMs: 200 };
  service = new WebhookService({
    ...deps,
    config: loadConfig({ TROVE_DATA_DIR: dataDir, TROVE_WEBHOOK_ALLOW_PRIVATE: '0' }),
  });
  lenient = new WebhookService({
    ...deps,
    config: loadConfig({ TROVE_DATA_DIR: dataDir, TROVE_WEBHOOK_ALLOW_PRIVATE: '1' }),
  });
  await store.db
    .insertInto('workspaces')
    .values({ id: ws, name: 't', created_at: nowIso(), last_event_ms: 0 })
    .execute();
});

afterAll(async () => {
  await sender?.close();
  await store?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function refusal(p: Promise<unknown>): Promise<{ code: string; status: number; message: string }> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  const e = err as AppError;
  return { code: e.code, status: e.status, message: e.message };
}

describe('creating a webhook', () => {
  it('accepts a public host, with an answer that has no warnings field', async () => {
    const hook = await service.create(ws, { url: 'https://public.test/hook' });
    expect(hook).toMatchObject({ url: 'https://public.test/hook', enabled: true });
    expect(hook).not.toHaveProperty('warnings');
  });

  it.each([
    ['https://nx.test/hook', 'DNS lookup of nx.test failed (ENOTFOUND: no such host, or it has no address record)'],
    ['https://down.test/hook', 'DNS lookup of down.test failed (EAI_AGAIN: the DNS resolver did not answer)'],
    ['https://hang.test/hook', 'DNS lookup of hang.test failed (ETIMEOUT: no answer within 200 ms)'],
  ])('accepts %s, which does not resolve now, and says so', async (url, dns) => {
    const hook = await service.create(ws, { url });
    expect(hook.url).toBe(url);
    expect(hook.signing_secret).toMatch(/^trove-whsec-/);
    expect(hook.warnings).toEqual([
      {
        code: 'dns_unresolved',
        detail:
          `url: ${dns}. The webhook was saved anyway: each delivery attempt resolves the host again ` +
          '(private addresses are still refused) and fails, to be retried, until it resolves; see the delivery log',
      },
    ]);
    // Saved and enabled like any other endpoint; the warning is not part of the stored object.
    const stored = await service.retrieve(ws, hook.webhook_id);
    expect(stored).toMatchObject({ url, enabled: true });
    expect(stored).not.toHaveProperty('warnings');
  });

  it.each([
    ['http://127.0.0.1/', 'Refused: 127.0.0.1 is a loopback address'],
    ['http://[::1]/', 'Refused: ::1 is a loopback address'],
    ['http://10.0.0.1/', 'Refused: 10.0.0.1 is a private network address'],
    ['http://loop.test/', 'Refused: loop.test resolves to 127.0.0.1, a loopback address'],
    // Any refused address refuses the name: the connection could go to either.
    ['https://mixed.test/', 'Refused: mixed.test resolves to 10.0.0.5, a private network address'],
    ['https://mixed6.test/', 'Refused: mixed6.test resolves to fe80::1, a link-local address'],
  ])('refuses %s', async (url, why) => {
    const before = (await service.list(ws)).length;
    expect(await refusal(service.create(ws, { url }))).toEqual({
      code: 'bad_request',
      status: 400,
      message: `url: ${why}; ${HINT}`,
    });
    expect(await service.list(ws)).toHaveLength(before);
  });

  it('does not resolve anything when private targets are allowed (the operator turned the guard off)', async () => {
    lookups.length = 0;
    const hook = await lenient.create(ws, { url: 'https://nx.test/hook' });
    expect(hook).not.toHaveProperty('warnings');
    expect(lookups).toEqual([]);
  });
});

describe("changing a webhook's URL", () => {
  it('accepts a host that does not resolve now, and says so; refuses private and mixed ones', async () => {
    const hook = await service.create(ws, { url: 'https://public.test/a' });
    const moved = await service.update(ws, hook.webhook_id, { url: 'https://later.test/b' });
    expect(moved).toMatchObject({ url: 'https://later.test/b', warnings: [{ code: 'dns_unresolved' }] });
    expect(moved.warnings![0]!.detail).toMatch(/^url: DNS lookup of later\.test failed \(ENOTFOUND: /);

    expect(await service.update(ws, hook.webhook_id, { url: 'https://public.test/c' })).not.toHaveProperty('warnings');
    const described = await service.update(ws, hook.webhook_id, { description: 'x' });
    expect(described).toMatchObject({ url: 'https://public.test/c', description: 'x' });
    expect(described).not.toHaveProperty('warnings');

    expect(await refusal(service.update(ws, hook.webhook_id, { url: 'https://mixed.test/' }))).toMatchObject({
      code: 'bad_request',
      status: 400,
    });
    expect(await refusal(service.update(ws, hook.webhook_id, { url: 'http://[::1]/' }))).toMatchObject({
      code: 'bad_request',
      status: 400,
    });
    expect((await service.retrieve(ws, hook.webhook_id)).url).toBe('https://public.test/c');
  });
});
