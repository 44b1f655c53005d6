/** `--forward-to` must be a local receiver: listen relays a workspace's events, never to another host. */
import { isIP } from 'node:net';
import { UsageError } from '../errors.js';

export function parseLocalTarget(raw: string): URL {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    throw new UsageError(`--forward-to: not a URL: ${raw}`, {
      hint: 'e.g. --forward-to http://localhost:3000/webhooks',
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--forward-to: only http(s) URLs, got ${url.protocol}`);
  }
  if (!isLocalHost(url.hostname)) {
    throw new UsageError(`--forward-to: ${url.hostname} is not this machine`, {
      hint: 'listen forwards to localhost only (localhost, 127.0.0.1, [::1]); for remote receivers create a webhook',
    });
  }
  return url;
}

export function isLocalHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}
