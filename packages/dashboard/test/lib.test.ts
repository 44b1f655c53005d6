/** Pure helpers of the dashboard: time stamps, paths, error bodies, namespace names, SSE parsing. */
import { describe, expect, it } from 'vitest';
import { formatStamp } from '../src/lib/time.js';
import { rawFileUrl, relPath, TroveApi } from '../src/api/client.js';
import { errorFromBody } from '../src/api/errors.js';
import { baseName, imageType, namespaceProblem, parentDir } from '../src/lib/paths.js';
import { readEventStream, type StreamMessage } from '../src/api/sse.js';
import { formatBytes } from '../src/lib/bytes.js';

describe('formatStamp', () => {
  const now = new Date(2026, 10, 25, 15, 0, 0); // local time
  it('prints HH:MM:SS for today in local time', () => {
    expect(formatStamp(new Date(2026, 10, 25, 9, 5, 7).toISOString(), now)).toBe('09:05:07');
  });
  it('prints MM-DD HH:MM:SS for other days', () => {
    expect(formatStamp(new Date(2026, 10, 24, 23, 59, 59).toISOString(), now)).toBe('11-24 23:59:59');
    expect(formatStamp(new Date(2025, 0, 2, 3, 4, 5).toISOString(), now)).toBe('01-02 03:04:05');
  });
  it('handles missing and unparsable values', () => {
    expect(formatStamp(null, now)).toBe('—');
    expect(formatStamp('yesterday-ish', now)).toBe('yesterday-ish');
  });
});

describe('paths', () => {
  it('strips one workspace/ prefix and leading slashes', () => {
    expect(relPath('workspace/a/b.txt')).toBe('a/b.txt');
    expect(relPath('/workspace/a')).toBe('a');
    expect(relPath('workspace')).toBe('');
    expect(relPath('a/workspace/b')).toBe('a/workspace/b');
  });
  it('percent-encodes each segment of /files/ URLs', () => {
    expect(rawFileUrl('workspace/dir with space/a?b#c%d.txt')).toBe('/files/dir%20with%20space/a%3Fb%23c%25d.txt');
  });
  it('knows parents, names and image types', () => {
    expect(parentDir('workspace/a/b.txt')).toBe('workspace/a/');
    expect(parentDir('workspace/a/')).toBe('workspace/');
    expect(parentDir('workspace/b.txt')).toBe('workspace/');
    expect(baseName('workspace/a/b.txt')).toBe('b.txt');
    expect(imageType('x/Photo.JPG')).toBe('image/jpeg');
    expect(imageType('notes.md')).toBeNull();
  });
  it('applies the protocol namespace rule', () => {
    expect(namespaceProblem('team-1.prod_x')).toBeNull();
    expect(namespaceProblem('..')).not.toBeNull();
    expect(namespaceProblem('.')).not.toBeNull();
    expect(namespaceProblem('a/b')).not.toBeNull();
    expect(namespaceProblem('x'.repeat(65))).not.toBeNull();
    expect(namespaceProblem('')).not.toBeNull();
  });
});

describe('errorFromBody', () => {
  it('keeps the server detail and code', () => {
    const e = errorFromBody(404, '{"detail":"Path not found: workspace/x","code":"path_not_found"}');
    expect(e.message).toBe('Path not found: workspace/x');
    expect(e.code).toBe('path_not_found');
    expect(e.status).toBe(404);
  });
  it('joins validation lists and falls back to the status line', () => {
    expect(errorFromBody(422, '{"detail":[{"msg":"field required"},{"msg":"too long"}]}').message).toBe(
      'field required; too long',
    );
    expect(errorFromBody(502, '<html>Bad gateway</html>', 'Bad Gateway').message).toBe('502 Bad Gateway');
  });
});

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MiB');
    expect(formatBytes(null)).toBe('—');
  });
});

describe('readEventStream', () => {
  it('parses data lines split across chunks, skips pings and bad frames', async () => {
    const chunks = [
      ': ping\n\ndata: {"type":"conn',
      'ected"}\r\n\r\ndata: not json\n\n',
      'data: {"id":"evt-1","type":"file.written"}\n\n: ping\n\n',
    ];
    const realFetch = globalThis.fetch;
    let url = '';
    // A real Response over a real stream: only the network hop is replaced.
    globalThis.fetch = (async (input: RequestInfo | URL) => {
      url = String(input);
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          for (const ch of chunks) c.enqueue(new TextEncoder().encode(ch));
          c.close();
        },
      });
      return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
    }) as typeof fetch;
    try {
      const got: StreamMessage[] = [];
      await readEventStream(new TroveApi('trove-sk-x'), 'ws-1', { types: 'file.written' }, new AbortController().signal, (m) =>
        got.push(m),
      );
      expect(url).toBe('/v1/workspaces/ws-1/webhooks/stream?types=file.written');
      expect(got).toEqual([{ type: 'connected' }, { id: 'evt-1', type: 'file.written' }]);
    } finally {
      globalThis.fetch = realFetch;
    }
  });
});
