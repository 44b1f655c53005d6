/**
 * The retry policy, against a test peer that answers with scripted statuses:
 * retried only where repeating the request cannot double its effect.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerResponse } from 'node:http';
import { APIConnectionError, InternalServerError, RateLimitError, TroveClient } from '../src/index.js';
import { json, startPeer, type Peer, type RecordedRequest } from './helpers/peer.js';

let peer: Peer | undefined;
afterEach(async () => {
  await peer?.close();
  peer = undefined;
});

type Step = (req: RecordedRequest, res: ServerResponse) => void;
const ok: Step = (req, res) =>
  req.url.startsWith('/v1/exec')
    ? json(res, 200, { exit_code: 0, stdout: 'ran\n', stderr: '', duration_ms: 1 })
    : req.method === 'PUT'
      ? json(res, 200, { path: 'workspace/u.bin', size_bytes: req.body.length })
      : (res.writeHead(200, { 'content-type': 'application/octet-stream' }), res.end('content'));
const status =
  (code: number, headers: Record<string, string> = {}): Step =>
  (_req, res) =>
    json(res, code, { detail: `status ${code}`, code: 'x' }, headers);
const reset: Step = (req, res) => {
  res.socket?.destroy();
};

/** A peer that plays `steps` in order (the last one repeats). */
async function script(...steps: Step[]): Promise<{ peer: Peer; client: (o?: object) => TroveClient }> {
  peer = await startPeer((req, res, i) => steps[Math.min(i, steps.length - 1)]!(req, res));
  const p = peer;
  return {
    peer: p,
    client: (o = {}) => new TroveClient({ apiKey: 'trove-sk-test', baseUrl: p.url, namespace: 'n', ...o }),
  };
}

describe('retries', () => {
  it('retries a GET after 429, waiting for Retry-After', async () => {
    const { peer, client } = await script(status(429, { 'retry-after': '1' }), ok);
    expect(await client().readText('a.txt')).toBe('content');
    expect(peer.requests).toHaveLength(2);
    expect(peer.requests[1]!.at - peer.requests[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    const when = new Date(Date.now() + 2000).toUTCString();
    const { peer, client } = await script(status(429, { 'retry-after': when }), ok);
    expect(await client().readText('a.txt')).toBe('content');
    // HTTP dates have whole-second precision, so the wait is between 1 and 2 s.
    expect(peer.requests[1]!.at - peer.requests[0]!.at).toBeGreaterThanOrEqual(900);
  });

  it('backs off exponentially on 429 without Retry-After', async () => {
    const { peer, client } = await script(status(429), status(429), ok);
    expect(await client().readText('a.txt')).toBe('content');
    expect(peer.requests).toHaveLength(3);
    // 500 ms and 1 s, each minus at most 25% jitter.
    expect(peer.requests[1]!.at - peer.requests[0]!.at).toBeGreaterThanOrEqual(370);
    expect(peer.requests[2]!.at - peer.requests[1]!.at).toBeGreaterThanOrEqual(740);
  });

  it('retries a POST on 429: the server refused it before acting', async () => {
    const { peer, client } = await script(status(429, { 'retry-after': '0' }), ok);
    expect(await client().exec('echo ran')).toBe('ran\n');
    expect(peer.requests.map((r) => r.method)).toEqual(['POST', 'POST']);
    expect(JSON.parse(peer.requests[1]!.body.toString())).toEqual({ command: 'echo ran' });
  });

  it('gives up after maxRetries and throws RateLimitError with retryAfter', async () => {
    const { peer, client } = await script(status(429, { 'retry-after': '0' }));
    const err = (await client({ maxRetries: 2 })
      .readText('a')
      .catch((e: unknown) => e)) as RateLimitError;
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err.retryAfter).toBe(0);
    expect(peer.requests).toHaveLength(3);
  });

  it('does not wait for a Retry-After over 60 s', async () => {
    const { peer, client } = await script(status(429, { 'retry-after': '120' }), ok);
    const err = (await client()
      .readText('a')
      .catch((e: unknown) => e)) as RateLimitError;
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err.retryAfter).toBe(120);
    expect(peer.requests).toHaveLength(1);
  });

  it('maxRetries: 0 disables retries (client-wide and per call)', async () => {
    const { peer, client } = await script(status(429, { 'retry-after': '0' }), ok);
    await expect(client({ maxRetries: 0 }).readText('a')).rejects.toBeInstanceOf(RateLimitError);
    expect(peer.requests).toHaveLength(1);
    await expect(client().readText('a', { maxRetries: 0 })).resolves.toBe('content');
  });

  it('retries a POST on 503 with Retry-After, but not without it', async () => {
    const first = await script(status(503, { 'retry-after': '0' }), ok);
    expect(await first.client().exec('echo ran')).toBe('ran\n');
    expect(first.peer.requests).toHaveLength(2);
    await first.peer.close();

    const second = await script(status(503), ok);
    await expect(second.client().exec('echo ran')).rejects.toBeInstanceOf(InternalServerError);
    expect(second.peer.requests).toHaveLength(1);
  });

  it('retries a GET on 502/503/504, never a POST', async () => {
    const get = await script(status(502), status(504), ok);
    expect(await get.client().readText('a')).toBe('content');
    expect(get.peer.requests).toHaveLength(3);
    await get.peer.close();

    const post = await script(status(502), ok);
    await expect(post.client().exec('echo ran')).rejects.toBeInstanceOf(InternalServerError);
    expect(post.peer.requests).toHaveLength(1);
  });

  it('never retries 500 or other 4xx', async () => {
    const { peer, client } = await script(status(500), ok);
    await expect(client().readText('a')).rejects.toBeInstanceOf(InternalServerError);
    expect(peer.requests).toHaveLength(1);
  });

  it('retries a GET whose connection failed before a response, never a POST', async () => {
    const get = await script(reset, ok);
    expect(await get.client().readText('a')).toBe('content');
    expect(get.peer.requests).toHaveLength(2);
    await get.peer.close();

    const post = await script(reset, ok);
    await expect(post.client().exec('echo ran')).rejects.toBeInstanceOf(APIConnectionError);
    expect(post.peer.requests).toHaveLength(1);
  });

  it('re-sends a buffered upload body on 429, identical', async () => {
    const data = Uint8Array.from({ length: 200_000 }, (_, i) => i % 251);
    const { peer, client } = await script(status(429, { 'retry-after': '0' }), ok);
    const progress: number[] = [];
    const r = await client().upload('u.bin', data, { onProgress: (p) => progress.push(p.loaded) });
    expect(r.sizeBytes).toBe(data.length);
    expect(peer.requests).toHaveLength(2);
    for (const req of peer.requests) expect(req.body.equals(Buffer.from(data))).toBe(true);
    expect(progress.at(-1)).toBe(data.length);
  });

  it('never re-sends a streamed upload body', async () => {
    const { peer, client } = await script(status(429, { 'retry-after': '0' }), ok);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array([1, 2, 3]));
        c.close();
      },
    });
    await expect(client().upload('u.bin', stream)).rejects.toBeInstanceOf(RateLimitError);
    expect(peer.requests).toHaveLength(1);
  });

  it('sends auth, namespace and user-agent headers; none of the namespace on management calls', async () => {
    const { peer, client } = await script((req, res) =>
      req.url.startsWith('/v1/me')
        ? json(res, 200, { workspace_id: 'ws-1', key_id: 'key-1', key_name: 'k', scope: 'workspace', namespace: null })
        : ok(req, res),
    );
    await client({ defaultHeaders: { 'x-extra': '1' } }).readText('dir/a b?#%.txt', { headers: { 'x-call': '2' } });
    const [files] = peer.requests;
    expect(files!.url).toBe('/files/dir/a%20b%3F%23%25.txt');
    expect(files!.headers.authorization).toBe('Bearer trove-sk-test');
    expect(files!.headers['x-namespace']).toBe('n');
    expect(files!.headers['user-agent']).toMatch(/^trove-sdk-ts\//);
    expect(files!.headers['x-extra']).toBe('1');
    expect(files!.headers['x-call']).toBe('2');
    await client().me();
    expect(peer.requests[1]!.url).toBe('/v1/me');
    expect(peer.requests[1]!.headers['x-namespace']).toBeUndefined();
  });
});
