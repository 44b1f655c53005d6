/** keys and webhooks (incl. `webhooks listen`) against a real server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import { rmSync } from 'node:fs';
import { api, startServer } from '../../../test/helpers/server.js';
import { login, makeHome, startTrove, trove, troveOk } from './helpers/cli.js';
import { useLoggedInCli } from './helpers/session.js';

const session = useLoggedInCli({ admin: true });
let admin: string;
let runtime: string;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}
let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];
let receiverStatus = 200;

beforeAll(async () => {
  admin = session.home;
  runtime = makeHome();
  await login(runtime, session.server.baseUrl, session.server.runtimeKey, ['-n', 'adm']);
  receiver = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(receiverStatus).end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => receiver?.close(r));
});

describe('keys', () => {
  it('create prints the secret once on stdout; list shows it masked; revoke needs -y and takes effect', async () => {
    const create = await trove(['keys', 'create', 'agent-1', '-n', 'agent-1'], { home: admin });
    expect(create.code).toBe(0);
    const key = create.stdout.trim();
    expect(key).toMatch(/^trove-sk-/);
    expect(create.stderr).toContain('not shown again');

    const list = JSON.parse(await troveOk(['keys', 'list', '--json'], { home: admin }));
    const entry = list.keys.find((k: { name: string }) => k.name === 'agent-1');
    expect(entry).toMatchObject({ scope: 'workspace', namespace: 'agent-1', prefix: key.slice(0, 12) });
    expect(JSON.stringify(list)).not.toContain(key);
    const table = await troveOk(['keys', 'list'], { home: admin });
    expect(table).toMatch(
      new RegExp(`^${entry.key_id}\\tagent-1\\tworkspace\\tagent-1\\t${key.slice(0, 12)}…\\t`, 'm'),
    );

    const env = { TROVE_API_KEY: key, TROVE_BASE_URL: session.server.baseUrl };
    expect((await trove(['whoami'], { home: makeHome(), env })).code).toBe(0);
    const refused = await trove(['keys', 'revoke', entry.key_id], { home: admin });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('without confirmation');
    expect((await trove(['whoami'], { home: makeHome(), env })).code).toBe(0);
    expect(JSON.parse(await troveOk(['keys', 'revoke', entry.key_id, '-y', '--json'], { home: admin }))).toEqual({
      key_id: entry.key_id,
      revoked: true,
    });
    expect((await trove(['whoami'], { home: makeHome(), env })).code).toBe(2);
  });

  it('--admin creates an admin key; --admin with a namespace is refused', async () => {
    const created = JSON.parse(await troveOk(['keys', 'create', 'ops', '--admin', '--json'], { home: admin }));
    expect(created).toMatchObject({ name: 'ops', scope: 'admin', namespace: null });
    expect(created.api_key).toMatch(/^trove-sk-/);
    expect((await trove(['keys', 'create', 'bad', '--admin', '-n', 'x'], { home: admin })).code).toBe(1);
  });

  it('a workspace key exits 2 with a hint about admin keys; an unknown id exits 1', async () => {
    const r = await trove(['keys', 'list'], { home: runtime });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Workspace keys cannot manage keys.');
    expect(r.stderr).toContain('admin key');
    const missing = await trove(['keys', 'revoke', 'key-doesnotexist', '-y'], { home: admin });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('keys list');
  });
});

describe('webhooks', () => {
  it('create, list, test, deliveries, delete', async () => {
    const create = await trove(
      ['webhooks', 'create', `${receiverUrl}/hook`, '--events', 'file.written,webhook.test', '--description', 'ci'],
      { home: admin },
    );
    expect(create.code).toBe(0);
    const secret = create.stdout.trim();
    expect(secret).toMatch(/^trove-whsec-/);
    const listed = JSON.parse(await troveOk(['webhooks', 'list', '--json'], { home: admin })).webhooks;
    expect(listed).toHaveLength(1);
    const hook = listed[0];
    expect(hook).toMatchObject({
      url: `${receiverUrl}/hook`,
      events: ['file.written', 'webhook.test'],
      description: 'ci',
      enabled: true,
    });

    const before = received.length;
    const test = JSON.parse(await troveOk(['webhooks', 'test', hook.webhook_id, '--json'], { home: admin }));
    expect(test).toMatchObject({ ok: true, status: 200 });
    const delivery = received.slice(before).find((r) => r.path === '/hook')!;
    const [t, v1] = String(delivery.headers['x-trove-signature'])
      .split(',')
      .map((p) => p.split('=')[1]);
    expect(v1).toBe(createHmac('sha256', secret).update(`${t}.${delivery.body}`).digest('hex'));

    const deliveries = JSON.parse(
      await troveOk(['webhooks', 'deliveries', hook.webhook_id, '--json'], { home: admin }),
    ).deliveries;
    expect(deliveries[0]).toMatchObject({ event_id: test.event_id, event_type: 'webhook.test', status: 'delivered' });
    const table = await troveOk(['webhooks', 'deliveries', hook.webhook_id], { home: admin });
    expect(table).toContain(`${test.event_id}\twebhook.test\tdelivered\t1\t200\t`);

    receiverStatus = 500;
    const failed = await trove(['webhooks', 'test', hook.webhook_id], { home: admin });
    receiverStatus = 200;
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('test delivery failed: receiver answered 500');

    expect((await trove(['webhooks', 'delete', hook.webhook_id], { home: admin })).code).toBe(1);
    expect(JSON.parse(await troveOk(['webhooks', 'delete', hook.webhook_id, '-y', '--json'], { home: admin }))).toEqual(
      {
        webhook_id: hook.webhook_id,
        deleted: true,
      },
    );
    const gone = await trove(['webhooks', 'test', hook.webhook_id], { home: admin });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('webhooks list');
  });

  it('listen forwards each event, re-signed with the given secret, to localhost only', async () => {
    const refused = await trove(['webhooks', 'listen', '--forward-to', 'http://example.com/hook'], { home: admin });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('not this machine');

    const secret = 'trove-whsec-listen-test-secret';
    const listen = startTrove(
      [
        'webhooks',
        'listen',
        '--forward-to',
        `${receiverUrl}/listen`,
        '--secret',
        secret,
        '--json',
        '-t',
        'file.written',
      ],
      { home: admin },
    );
    await listen.waitFor((out) => out.includes('"ready":true'));
    const ready = JSON.parse(listen.stdout().split('\n')[0]!);
    expect(ready).toMatchObject({ ready: true, forward_to: `${receiverUrl}/listen`, signing_secret: secret });

    const res = await api(
      session.server,
      session.server.runtimeKey,
      'adm',
    )('/write', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'listened.txt', content: 'hi' }),
    });
    expect(res.status).toBe(200);
    await listen.waitFor((out) => out.includes('"status":200'));
    listen.proc.kill('SIGINT');
    const result = await listen.exited;
    expect(result.code).toBe(130);

    const forwarded = received.filter((r) => r.path === '/listen');
    expect(forwarded).toHaveLength(1);
    const { headers, body } = forwarded[0]!;
    const event = JSON.parse(body);
    expect(event).toMatchObject({ type: 'file.written', namespace: 'adm', data: { path: 'workspace/listened.txt' } });
    expect(headers['x-trove-event']).toBe('file.written');
    expect(headers['x-trove-event-id']).toBe(event.id);
    const sig = String(headers['x-trove-signature']);
    const t = Number(/t=(\d+)/.exec(sig)![1]);
    expect(Math.abs(t - Date.now() / 1000)).toBeLessThan(300);
    expect(sig).toBe(`t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`);
    expect(headers['webhook-id']).toBe(event.id);
    expect(headers['webhook-signature']).toBe(
      'v1,' +
        createHmac('sha256', secret).update(`${event.id}.${headers['webhook-timestamp']}.${body}`).digest('base64'),
    );
    const line = JSON.parse(result.stdout.trim().split('\n')[1]!);
    expect(line).toMatchObject({ event_id: event.id, type: 'file.written', status: 200, ok: true });
  });

  it('listen reconnects after the server restarts and forwards what it missed exactly once', async () => {
    // A fixed port, so the restarted server is where the listener reconnects to.
    const port = await new Promise<number>((resolve) => {
      const probe = createTcpServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(p));
      });
    });
    let srv = await startServer({ port });
    const home = makeHome();
    await login(home, srv.baseUrl, srv.adminKey);
    const write = (path: string) =>
      api(
        srv,
        srv.runtimeKey,
        'rc',
      )('/write', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path, content: path }),
      }).then((r) => expect(r.status).toBe(200));
    const listen = startTrove(
      ['webhooks', 'listen', '--forward-to', `${receiverUrl}/rc`, '--json', '-t', 'file.written'],
      { home },
    );
    try {
      await listen.waitFor((out) => out.includes('"ready":true'));
      await write('a.txt');
      await listen.waitFor((out) => out.includes('"status":200'));
      await srv.stop();
      srv = await srv.restart();
      // Written while the listener is (most likely) still reconnecting: it arrives through the backfill or the stream.
      await write('b.txt');
      await listen.waitFor((_o, err) => err.includes('Reconnected'), 90_000);
      await write('c.txt');
      await listen.waitFor((out) => (out.match(/"status":200/g) ?? []).length >= 3);
      listen.proc.kill('SIGINT');
      expect((await listen.exited).code).toBe(130);
      const paths = received.filter((r) => r.path === '/rc').map((r) => JSON.parse(r.body).data.path);
      expect(paths).toEqual(['workspace/a.txt', 'workspace/b.txt', 'workspace/c.txt']);
    } finally {
      listen.proc.kill('SIGKILL');
      await srv.close();
      // A restarted server was given its data dir explicitly, so close() leaves it.
      rmSync(srv.dataDir, { recursive: true, force: true });
    }
  });

  it('listen generates and prints a secret when none is given', async () => {
    const listen = startTrove(['webhooks', 'listen', '--forward-to', `localhost:1/x`], { home: admin });
    await listen.waitFor((_o, err) => err.includes('Signing secret'));
    listen.proc.kill('SIGINT');
    const { stderr, code } = await listen.exited;
    expect(code).toBe(130);
    expect(stderr).toMatch(/Signing secret \(generated[^)]*\): trove-whsec-[A-Za-z0-9]{40}/);
  });
});
