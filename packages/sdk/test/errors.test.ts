/** Every error class, produced by the real server where it can produce it on demand. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../../../test/helpers/server.js';
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  ExecTimeoutError,
  InternalServerError,
  NotFoundError,
  PayloadTooLargeError,
  PermissionDeniedError,
  RateLimitError,
  TroveAdminClient,
  TroveClient,
  TroveError,
  TroveExecError,
  UnprocessableEntityError,
} from '../src/index.js';
import { json, startPeer, type Peer } from './helpers/peer.js';

let server: StartedServer;
let limited: StartedServer;

beforeAll(async () => {
  [server, limited] = await Promise.all([
    startServer(),
    startServer({ env: { TROVE_EXEC_TIMEOUT_MS: '1000', TROVE_MAX_UPLOAD_BYTES: '1024' } }),
  ]);
});
afterAll(async () => {
  await Promise.all([server?.close(), limited?.close()]);
});

async function caught(p: Promise<unknown>): Promise<TroveError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TroveError);
  return err as TroveError;
}

function expectApiError(err: TroveError, cls: new (...a: never[]) => APIError, status: number, code: string) {
  expect(err).toBeInstanceOf(cls);
  expect(err).toBeInstanceOf(APIError);
  expect(err.status).toBe(status);
  expect(err.code).toBe(code);
  expect(err.detail).toEqual(expect.any(String));
  expect(err.message).toBe(err.detail);
  expect(err.requestId).toEqual(expect.any(String));
  expect(err.requestId!.length).toBeGreaterThan(0);
  expect(err.name).toBe(cls.name);
}

describe('HTTP errors from the real server', () => {
  it('400 BadRequestError: a workspace key without a namespace', async () => {
    const noNs = new TroveClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl });
    const err = await caught(noNs.write('a.txt', 'x'));
    expectApiError(err, BadRequestError, 400, 'namespace_required');
    expect(err.detail).toBe('X-Namespace header required');
  });

  it('401 AuthenticationError: an unknown key', async () => {
    const bad = new TroveClient({ apiKey: 'trove-sk-definitely-not-valid', baseUrl: server.baseUrl, namespace: 'n' });
    const err = await caught(bad.readText('a.txt'));
    expectApiError(err, AuthenticationError, 401, 'unauthorized');
    expect(err.detail).toBe('Invalid API key');
  });

  it('403 PermissionDeniedError: an admin key on a runtime endpoint, a workspace key on keys', async () => {
    const adminAsRuntime = new TroveClient({ apiKey: server.adminKey, baseUrl: server.baseUrl, namespace: 'n' });
    expectApiError(await caught(adminAsRuntime.readText('a.txt')), PermissionDeniedError, 403, 'scope_forbidden');
    const runtimeAsAdmin = new TroveAdminClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl });
    const err = await caught(runtimeAsAdmin.listKeys());
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect(err.detail).toBe('Workspace keys cannot manage keys.');
  });

  it('404 NotFoundError: a missing path', async () => {
    const trove = new TroveClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl, namespace: 'errs' });
    const err = await caught(trove.readText('missing/file.txt'));
    expectApiError(err, NotFoundError, 404, 'path_not_found');
    expect(err.detail).toBe('Path not found: workspace/missing/file.txt');
  });

  it('408 ExecTimeoutError: a command past TROVE_EXEC_TIMEOUT_MS', async () => {
    const trove = new TroveClient({ apiKey: limited.runtimeKey, baseUrl: limited.baseUrl, namespace: 'slow' });
    const started = Date.now();
    const err = await caught(trove.exec('sleep 5'));
    expectApiError(err, ExecTimeoutError, 408, 'exec_timeout');
    expect(err.detail).toMatch(/timed out/);
    // Answered by the server's limit, not after the full sleep (and never retried).
    expect(Date.now() - started).toBeLessThan(4500);
  });

  it('413 PayloadTooLargeError: an upload over TROVE_MAX_UPLOAD_BYTES', async () => {
    const trove = new TroveClient({ apiKey: limited.runtimeKey, baseUrl: limited.baseUrl, namespace: 'big' });
    const err = await caught(trove.upload('big.bin', new Uint8Array(4096)));
    expectApiError(err, PayloadTooLargeError, 413, 'payload_too_large');
    await expect(trove.readText('big.bin')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('422 UnprocessableEntityError: exec stdin over 1 MiB', async () => {
    const trove = new TroveClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl, namespace: 'errs' });
    const err = await caught(trove.exec('cat', { stdin: 'x'.repeat(1024 * 1024 + 1) }));
    expect(err).toBeInstanceOf(UnprocessableEntityError);
    expect(err.status).toBe(422);
  });

  it('429 RateLimitError with retryAfter once retries are exhausted', async () => {
    const rl = await startServer({ env: { TROVE_RATE_LIMIT_PER_MINUTE: '2' } });
    try {
      const trove = new TroveClient({ apiKey: rl.runtimeKey, baseUrl: rl.baseUrl, namespace: 'rl', maxRetries: 0 });
      let err: TroveError | undefined;
      for (let i = 0; i < 5 && !err; i++)
        err = await trove.readText('x').then(
          () => undefined,
          (e: TroveError) => (e instanceof RateLimitError ? e : undefined),
        );
      expect(err).toBeInstanceOf(RateLimitError);
      expectApiError(err!, RateLimitError, 429, 'rate_limited');
      expect((err as RateLimitError).retryAfter).toBeGreaterThan(0);
    } finally {
      await rl.close();
    }
  });

  it('TroveExecError on a non-zero exit', async () => {
    const trove = new TroveClient({ apiKey: server.runtimeKey, baseUrl: server.baseUrl, namespace: 'errs' });
    const err = await caught(trove.exec('exit 2'));
    expect(err).toBeInstanceOf(TroveExecError);
    expect(err).not.toBeInstanceOf(APIError);
    expect((err as TroveExecError).exitCode).toBe(2);
  });
});

describe('errors the real server does not produce on demand (test peer)', () => {
  let peer: Peer;
  beforeAll(async () => {
    peer = await startPeer((req, res) => {
      if (req.url.startsWith('/v1/me'))
        return json(res, 200, {
          workspace_id: 'ws-peer',
          key_id: 'key-1',
          key_name: 'k',
          scope: 'workspace',
          namespace: null,
        });
      if (req.url.startsWith('/files/conflict'))
        return json(res, 409, { detail: 'The namespace is busy', code: 'conflict' });
      if (req.url.startsWith('/files/boom'))
        return json(res, 500, { detail: 'Internal server error', code: 'internal_error' });
      if (req.url.startsWith('/files/teapot')) return json(res, 418, { detail: "I'm a teapot" });
      if (req.url.startsWith('/files/text')) {
        res.writeHead(502, { 'content-type': 'text/html' });
        return res.end('<html>Bad Gateway</html>');
      }
      if (req.url.startsWith('/files/hang')) return; // never answers
      json(res, 404, { detail: 'nope', code: 'not_found' });
    });
  });
  afterAll(async () => {
    await peer?.close();
  });
  const client = (extra: Partial<ConstructorParameters<typeof TroveClient>[0]> = {}) =>
    new TroveClient({ apiKey: 'trove-sk-peer', baseUrl: peer.url, namespace: 'n', maxRetries: 0, ...extra });

  it('409 ConflictError', async () => {
    const err = await caught(client().readText('conflict'));
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({
      status: 409,
      code: 'conflict',
      detail: 'The namespace is busy',
      requestId: 'req-peer',
    });
  });

  it('5xx InternalServerError', async () => {
    const err = await caught(client().readText('boom'));
    expect(err).toBeInstanceOf(InternalServerError);
    expect(err).toMatchObject({ status: 500, code: 'internal_error' });
    const gw = await caught(client().readText('text'));
    expect(gw).toBeInstanceOf(InternalServerError);
    expect(gw).toMatchObject({ status: 502, detail: '<html>Bad Gateway</html>', code: undefined });
  });

  it('other statuses are a plain APIError', async () => {
    const err = await caught(client().readText('teapot'));
    expect(err.constructor).toBe(APIError);
    expect(err).toMatchObject({ status: 418, detail: "I'm a teapot" });
  });

  it('APIConnectionError when nothing listens', async () => {
    const closed = await startPeer(() => {});
    const url = closed.url;
    await closed.close();
    const trove = new TroveClient({ apiKey: 'trove-sk-x', baseUrl: url, namespace: 'n', maxRetries: 1 });
    const err = await caught(trove.readText('a'));
    expect(err).toBeInstanceOf(APIConnectionError);
    expect(err).not.toBeInstanceOf(APIConnectionTimeoutError);
    expect(err.message).toContain(url);
  });

  it('APIConnectionTimeoutError past timeoutMs', async () => {
    const before = peer.requests.length;
    const err = await caught(client({ timeoutMs: 200, maxRetries: 1 }).readText('hang'));
    expect(err).toBeInstanceOf(APIConnectionTimeoutError);
    expect(err).toBeInstanceOf(APIConnectionError);
    // A GET that timed out is retried once (maxRetries: 1).
    expect(peer.requests.length - before).toBe(2);
    // A per-call timeout overrides the client's.
    await expect(client({ timeoutMs: 60_000 }).readText('hang', { timeoutMs: 100 })).rejects.toBeInstanceOf(
      APIConnectionTimeoutError,
    );
  });

  it('APIUserAbortError when the caller aborts', async () => {
    const ac = new AbortController();
    const p = client({ maxRetries: 2 }).readText('hang', { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const err = await caught(p);
    expect(err).toBeInstanceOf(APIUserAbortError);
    await expect(client().readText('hang', { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(APIUserAbortError);
  });
});
