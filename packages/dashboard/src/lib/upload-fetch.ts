/** Request headers only the browser may set, among those a fetch caller may pass (the SDK's user-agent). */
const BROWSER_HEADERS = new Set([
  'user-agent',
  'host',
  'content-length',
  'connection',
  'accept-encoding',
  'cookie',
  'origin',
  'referer',
]);

/**
 * A fetch over XMLHttpRequest, handed to the SDK for uploads: only XHR reports upload progress
 * in every browser (a streamed fetch body needs HTTP/2, and this server speaks HTTP/1.1). It
 * does what the SDK's upload asks of fetch: method, headers, a Blob body, an abort signal, and
 * a Response with status, headers and body.
 */
export function uploadFetch(onProgress: (loaded: number, total: number) => void): typeof fetch {
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const signal = init.signal;
      if (signal?.aborted) {
        reject(new DOMException('The upload was cancelled', 'AbortError'));
        return;
      }
      const xhr = new XMLHttpRequest();
      xhr.open(init.method ?? 'GET', input instanceof Request ? input.url : String(input));
      new Headers(init.headers).forEach((value, name) => {
        // The browser sets these itself (and logs an error when a page tries to).
        if (!BROWSER_HEADERS.has(name)) xhr.setRequestHeader(name, value);
      });
      xhr.responseType = 'blob';
      // `total` is 0 when the browser cannot tell.
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : 0);
      const onAbort = () => xhr.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      xhr.onload = () => {
        done();
        const empty = xhr.status === 204 || xhr.status === 304;
        resolve(
          new Response(empty ? null : (xhr.response as Blob), {
            status: xhr.status,
            statusText: xhr.statusText,
            headers: parseHeaders(xhr.getAllResponseHeaders()),
          }),
        );
      };
      // What fetch does on a network failure: a TypeError (the SDK turns it into APIConnectionError).
      xhr.onerror = () => {
        done();
        reject(new TypeError('Network request failed'));
      };
      xhr.onabort = () => {
        done();
        reject(new DOMException('The upload was cancelled', 'AbortError'));
      };
      xhr.send((init.body ?? null) as XMLHttpRequestBodyInit | null);
    });
}

/** `getAllResponseHeaders()` text (`name: value` lines) as Headers. */
export function parseHeaders(raw: string): Headers {
  const headers = new Headers();
  for (const line of raw.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return headers;
}
