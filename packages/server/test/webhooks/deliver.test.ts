import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeliverySender } from '../../src/webhooks/deliver.js';
import type { Resolver } from '../../src/webhooks/ssrf.js';

interface Hit {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let receiver: http.Server;
let port: number;
const hits: Hit[] = [];
let respond: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => res.end('ok');

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      hits.push({ path: req.url ?? '', headers: req.headers, body });
      respond(req, res);
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  port = (receiver.address() as AddressInfo).port;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
});

const senders: DeliverySender[] = [];
afterEach(async () => {
  hits.length = 0;
  respond = (_req, res) => res.end('ok');
  for (const s of senders.splice(0)) await s.close();
});
const sender = (opts: { allowPrivate?: boolean; timeoutMs?: number; resolve?: Resolver } = {}) => {
  const s = new DeliverySender({
    allowPrivate: opts.allowPrivate ?? true,
    timeoutMs: opts.timeoutMs ?? 2000,
    resolve: opts.resolve,
  });
  senders.push(s);
  return s;
};
const send = (s: DeliverySender, url: string) =>
  s.send({
    url,
    body: '{"hello":"world"}',
    headers: { 'content-type': 'application/json', 'x-trove-event': 'file.written' },
  });

describe('DeliverySender', () => {
  it('POSTs the body and headers and reports a 2xx as delivered', async () => {
    respond = (_req, res) => {
      res.statusCode = 204;
      res.end();
    };
    const r = await send(sender(), `http://127.0.0.1:${port}/hooks?x=1`);
    expect(r).toMatchObject({ ok: true, statusCode: 204, error: null });
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
    expect(hits).toHaveLength(1);
    expect(hits[0]).toMatchObject({ path: '/hooks?x=1', body: '{"hello":"world"}' });
    expect(hits[0]!.headers['x-trove-event']).toBe('file.written');
  });

  it('reports a non-2xx with the status and the start of the response body', async () => {
    respond = (_req, res) => {
      res.statusCode = 503;
      res.end('  upstream\n\tbusy  ' + 'x'.repeat(500));
    };
    const r = await send(sender(), `http://127.0.0.1:${port}/`);
    expect(r.ok).toBe(false);
    expect(r.statusCode).toBe(503);
    expect(r.error).toMatch(/^Receiver answered HTTP 503: upstream busy x+…$/);
    expect(r.error!.length).toBeLessThan(260);
  });

  it('never follows a redirect', async () => {
    respond = (req, res) => {
      if (req.url === '/moved') {
        res.writeHead(307, { location: `http://127.0.0.1:${port}/target` });
        res.end();
      } else res.end('reached');
    };
    const r = await send(sender(), `http://127.0.0.1:${port}/moved`);
    expect(r).toMatchObject({
      ok: false,
      statusCode: 307,
      error: `Redirects are not followed: HTTP 307 to http://127.0.0.1:${port}/target; use the final URL`,
    });
    expect(hits.map((h) => h.path)).toEqual(['/moved']);
  });

  it('times out a receiver that never answers', async () => {
    respond = () => {};
    const started = Date.now();
    const r = await send(sender({ timeoutMs: 300 }), `http://127.0.0.1:${port}/hang`);
    expect(r).toMatchObject({ ok: false, statusCode: null, error: 'Timed out after 300 ms' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('reports a refused connection', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const r = await send(sender(), `http://127.0.0.1:${deadPort}/`);
    expect(r).toMatchObject({ ok: false, statusCode: null, error: 'Connection refused (ECONNREFUSED)' });
  });

  it('refuses loopback literals when private targets are not allowed, without connecting', async () => {
    const s = sender({ allowPrivate: false });
    for (const host of ['127.0.0.1', '[::ffff:127.0.0.1]', '[::1]']) {
      const r = await send(s, `http://${host}:${port}/`);
      expect(r.ok).toBe(false);
      expect(r.statusCode).toBeNull();
      expect(r.error).toMatch(
        /^Refused: .* is a (IPv4-mapped )?loopback address; webhooks may only target public addresses/,
      );
    }
    expect(hits).toHaveLength(0);
  });

  it('connects to the address its own resolver returned (host names need no system DNS)', async () => {
    const asked: string[] = [];
    const resolve: Resolver = async (host) => {
      asked.push(host);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const r = await send(sender({ allowPrivate: true, resolve }), `http://receiver.trove-test.invalid:${port}/named`);
    expect(r).toMatchObject({ ok: true, statusCode: 200 });
    expect(asked).toContain('receiver.trove-test.invalid');
    expect(hits[0]!.headers.host).toBe(`receiver.trove-test.invalid:${port}`);
  });

  it('is not fooled by DNS rebinding: the connection re-checks the address it uses', async () => {
    // First answer (the pre-check) is public, the second (the connection) is loopback.
    let calls = 0;
    const resolve: Resolver = async () => {
      calls++;
      return [{ address: calls === 1 ? '93.184.216.34' : '127.0.0.1', family: 4 }];
    };
    const r = await send(sender({ allowPrivate: false, resolve }), `http://rebind.trove-test.invalid:${port}/`);
    expect(calls).toBe(2);
    expect(r.ok).toBe(false);
    expect(r.error).toBe(
      'Refused: rebind.trove-test.invalid resolves to 127.0.0.1, a loopback address; webhooks may only target public addresses (the operator setting TROVE_WEBHOOK_ALLOW_PRIVATE=1 allows private ones for development)',
    );
    expect(hits).toHaveLength(0);
  });

  it('reports a host name that does not resolve', async () => {
    const resolve: Resolver = async () => {
      throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
    };
    const r = await send(sender({ allowPrivate: false, resolve }), 'https://nowhere.trove-test.invalid/');
    expect(r).toMatchObject({
      ok: false,
      statusCode: null,
      error: 'DNS lookup of nowhere.trove-test.invalid failed (ENOTFOUND: no such host, or it has no address record)',
    });
    // Same answer when the guard is off: the connection's own lookup fails.
    const open = await send(sender({ allowPrivate: true, resolve }), 'https://nowhere.trove-test.invalid/');
    expect(open).toMatchObject({ ok: false, statusCode: null, error: r.error });
  });

  it('refuses a host with public and private addresses, before and at connect time', async () => {
    let calls = 0;
    const mixed: Resolver = async () => {
      calls++;
      return [
        { address: '93.184.216.34', family: 4 },
        { address: '127.0.0.1', family: 4 },
      ];
    };
    const r = await send(sender({ allowPrivate: false, resolve: mixed }), `http://mixed.trove-test.invalid:${port}/`);
    expect(r).toMatchObject({
      ok: false,
      statusCode: null,
      error:
        'Refused: mixed.trove-test.invalid resolves to 127.0.0.1, a loopback address; webhooks may only target public addresses (the operator setting TROVE_WEBHOOK_ALLOW_PRIVATE=1 allows private ones for development)',
    });
    expect(calls).toBe(1);
    // The connect-time lookup alone (public answer first, mixed answer at connect) refuses it too.
    calls = 0;
    const rebinding: Resolver = async () => {
      calls++;
      return calls === 1
        ? [{ address: '93.184.216.34', family: 4 }]
        : [
            { address: '93.184.216.34', family: 4 },
            { address: '127.0.0.1', family: 4 },
          ];
    };
    const r2 = await send(
      sender({ allowPrivate: false, resolve: rebinding }),
      `http://mixed.trove-test.invalid:${port}/`,
    );
    expect(calls).toBe(2);
    expect(r2.error).toBe(r.error);
    expect(hits).toHaveLength(0);
  });

  it('bounds a DNS lookup that never answers by the attempt timeout', async () => {
    const hang: Resolver = () => new Promise(() => {});
    const r = await send(
      sender({ allowPrivate: false, resolve: hang, timeoutMs: 100 }),
      'https://slow.trove-test.invalid/',
    );
    expect(r.ok).toBe(false);
    expect(r.statusCode).toBeNull();
    expect(r.error).toMatch(
      /^(Timed out after 100 ms|DNS lookup of slow\.trove-test\.invalid failed \(ETIMEOUT: no answer within 100 ms\))$/,
    );
  });

  it('stops at shutdown', async () => {
    respond = () => {};
    const s = sender({ timeoutMs: 10_000 });
    const ac = new AbortController();
    const pending = s.send({ url: `http://127.0.0.1:${port}/`, body: '{}', headers: {}, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    expect(await pending).toMatchObject({ ok: false, statusCode: null, error: 'Interrupted by server shutdown' });
  });
});
