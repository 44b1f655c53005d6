/**
 * A small keep-alive HTTP client on node:http (cheaper per request than
 * fetch, so the load generator steals less CPU from the server it measures)
 * and a closed-loop runner.
 */
import http from 'node:http';

export function makeClient(baseUrl, { connections = 16 } = {}) {
  const url = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  /**
   * @returns {Promise<{status:number, headers:object, body:Buffer, ms:number}>}
   * `discard: true` drains the body without keeping it.
   */
  function request({ method = 'GET', path, headers = {}, body, timeoutMs = 60_000, discard = false, signal }) {
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const h = { ...headers };
      let payload = body;
      if (payload !== undefined && !Buffer.isBuffer(payload) && typeof payload !== 'string') {
        payload = JSON.stringify(payload);
        h['content-type'] ??= 'application/json';
      }
      if (payload !== undefined) h['content-length'] = Buffer.byteLength(payload);
      const req = http.request(
        { host: url.hostname, port: url.port, method, path, headers: h, agent, signal },
        (res) => {
          const chunks = [];
          res.on('data', (c) => {
            if (!discard) chunks.push(c);
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode,
              headers: res.headers,
              body: Buffer.concat(chunks),
              ms: performance.now() - started,
            }),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
  return { request, close: () => agent.destroy() };
}

/** JSON helper: throws with the response body on an unexpected status. */
export async function expectJson(res, status = 200) {
  const text = res.body.toString('utf8');
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

/**
 * Runs `op(worker, i)` from `concurrency` workers until `durationMs` has
 * passed or `count` operations have started; returns the elapsed seconds.
 */
export async function closedLoop({ concurrency, durationMs = Infinity, count = Infinity, op }) {
  const started = performance.now();
  let issued = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (issued < count && performance.now() - started < durationMs) {
        await op(worker, issued++);
      }
    }),
  );
  return (performance.now() - started) / 1000;
}
