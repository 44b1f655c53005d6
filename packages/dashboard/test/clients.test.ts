/**
 * The dashboard's SDK clients without a browser: one key and workspace for every client, the
 * namespace header of runtime clients, sign-out on a rejected key (any 401, the server's detail
 * kept), errors shown as the server's detail, and output chunks joined as a terminal shows them.
 * Against a recording HTTP peer: only the origin differs from the app's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APIConnectionError, AuthenticationError, type OutputChunk } from 'trove-sdk';
import { json, startPeer, type Peer } from '../../sdk/test/helpers/peer.js';
import { describeError, hasStatus, isAbort } from '../src/lib/errors.js';
import { segments } from '../src/lib/output.js';
import { createClients } from '../src/lib/trove.js';
import { parseHeaders } from '../src/lib/upload-fetch.js';

const REVOKED = 'trove-sk-revoked';
let peer: Peer;

beforeAll(async () => {
  peer = await startPeer((req, res) => {
    if (req.headers.authorization === `Bearer ${REVOKED}`)
      return json(res, 401, { detail: 'Invalid API key', code: 'invalid_api_key' });
    if (req.url.startsWith('/v1/snapshots'))
      return json(res, 200, {
        snapshots: [
          {
            snapshot_id: 'snap-1',
            namespace: req.headers['x-namespace'],
            label: null,
            size_bytes: 10,
            created_at: '2026-12-07T00:00:00.000Z',
          },
        ],
      });
    if (req.url.startsWith('/v1/workspaces/ws-1/namespaces'))
      return json(res, 200, {
        namespaces: [{ name: 'a', created_at: '2026-12-07T00:00:00.000Z', last_activity_at: null }],
      });
    if (req.url === '/files/gone.txt')
      return json(res, 404, { detail: 'Path not found: workspace/gone.txt', code: 'path_not_found' });
    return json(res, 500, { detail: `unexpected ${req.method} ${req.url}` });
  });
});
afterAll(async () => {
  await peer?.close();
});

describe('createClients', () => {
  it('sends the key, the known workspace and, for runtime clients, the namespace', async () => {
    const clients = createClients({ apiKey: 'trove-sk-good', baseUrl: peer.url, workspaceId: 'ws-1' });
    expect(clients.runtime('a')).toBe(clients.runtime('a'));
    const [snap] = await clients.runtime('team.a').snapshots.list();
    expect(snap).toMatchObject({ snapshotId: 'snap-1', namespace: 'team.a', sizeBytes: 10 });
    // The workspace id from sign-in: no second GET /v1/me.
    expect((await clients.trove.namespaces.list()).map((n) => n.name)).toEqual(['a']);
    const sent = peer.requests.slice(-2);
    expect(sent.map((r) => [r.method, r.url, r.headers['x-namespace']])).toEqual([
      ['GET', '/v1/snapshots', 'team.a'],
      ['GET', '/v1/workspaces/ws-1/namespaces', undefined],
    ]);
    for (const r of sent) expect(r.headers.authorization).toBe('Bearer trove-sk-good');
  });

  it('reports a rejected key with the server detail, from any client, and still throws', async () => {
    const rejected: string[] = [];
    const clients = createClients({
      apiKey: REVOKED,
      baseUrl: peer.url,
      workspaceId: 'ws-1',
      onUnauthorized: (d) => rejected.push(d),
    });
    await expect(clients.runtime('a').snapshots.list()).rejects.toBeInstanceOf(AuthenticationError);
    await expect(clients.admin.keys.list()).rejects.toMatchObject({ status: 401, detail: 'Invalid API key' });
    const upload = clients.runtimeWithFetch('a', globalThis.fetch.bind(globalThis));
    await expect(upload.upload('x.txt', 'x')).rejects.toBeInstanceOf(AuthenticationError);
    expect(rejected).toEqual(['Invalid API key', 'Invalid API key', 'Invalid API key']);
  });

  it('other failures do not sign out', async () => {
    const rejected: string[] = [];
    const clients = createClients({
      apiKey: 'trove-sk-good',
      baseUrl: peer.url,
      workspaceId: 'ws-1',
      onUnauthorized: (d) => rejected.push(d),
    });
    const err = await clients
      .runtime('a')
      .readBytes('gone.txt')
      .catch((e: unknown) => e);
    expect(hasStatus(err, 404)).toBe(true);
    expect(describeError(err)).toBe('Path not found: workspace/gone.txt');
    expect(rejected).toEqual([]);
  });
});

describe('describeError and isAbort', () => {
  it('says the server cannot be reached instead of showing fetch internals', async () => {
    const closed = await startPeer((_req, res) => json(res, 200, {}));
    const url = closed.url;
    await closed.close();
    const err = await createClients({ apiKey: 'trove-sk-x', baseUrl: url, workspaceId: 'ws-1' })
      .runtime('a')
      .snapshots.create({ maxRetries: 0 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIConnectionError);
    expect(describeError(err)).toMatch(/^Could not reach the Trove server/);
  });

  it('recognises a request the page stopped', async () => {
    const ctrl = new AbortController();
    ctrl.abort();
    const err = await createClients({ apiKey: 'trove-sk-x', baseUrl: peer.url, workspaceId: 'ws-1' })
      .runtime('a')
      .snapshots.list({ signal: ctrl.signal })
      .catch((e: unknown) => e);
    expect(isAbort(err)).toBe(true);
    expect(isAbort(new DOMException('Upload cancelled', 'AbortError'))).toBe(true);
    expect(isAbort(new Error('boom'))).toBe(false);
    expect(describeError(new Error('plain'))).toBe('plain');
  });
});

describe('segments', () => {
  const chunk = (type: 'stdout' | 'stderr', offset: number, text: string): OutputChunk => ({
    type,
    offset,
    data: new TextEncoder().encode(text),
    text,
  });
  it('joins consecutive chunks of a stream and drops empty ones', () => {
    expect(
      segments([chunk('stdout', 0, 'a'), chunk('stdout', 1, '€b'), chunk('stderr', 0, 'err'), chunk('stdout', 5, '')]),
    ).toEqual([
      { type: 'stdout', text: 'a€b' },
      { type: 'stderr', text: 'err' },
    ]);
  });
});

describe('parseHeaders', () => {
  it('reads XHR response header lines', () => {
    const h = parseHeaders('content-type: application/json\r\netag: "abc"\r\nx-request-id: req-1\r\n');
    expect([h.get('content-type'), h.get('etag'), h.get('x-request-id')]).toEqual([
      'application/json',
      '"abc"',
      'req-1',
    ]);
  });
});
