import type { TroveApi } from './client';
import type { TroveEvent } from './types';

export type StreamMessage = { type: 'connected' } | TroveEvent;

/**
 * Reads the Server-Sent Events stream with fetch, because EventSource cannot send the
 * Authorization header. Resolves when the server ends the stream; rejects on network errors
 * and with an AbortError when `signal` fires.
 */
export async function readEventStream(
  api: TroveApi,
  workspaceId: string,
  filters: { types?: string; namespace?: string },
  signal: AbortSignal,
  onMessage: (msg: StreamMessage) => void,
): Promise<void> {
  const res = await api.fetch('GET', `/v1/workspaces/${encodeURIComponent(workspaceId)}/webhooks/stream`, {
    query: filters,
    signal,
  });
  if (!res.body) throw new Error('This browser cannot read streamed responses.');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data: string[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // The SSE grammar allows \r\n, \r or \n line endings.
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') {
        if (data.length) dispatch(data.join('\n'), onMessage);
        data = [];
      } else if (line.startsWith(':')) {
        // Heartbeat comment (": ping").
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
      // Other fields (event:, id:, retry:) are not used by Trove's stream.
    }
  }
}

function dispatch(payload: string, onMessage: (msg: StreamMessage) => void): void {
  try {
    onMessage(JSON.parse(payload) as StreamMessage);
  } catch {
    // A malformed frame is skipped rather than killing the live feed.
  }
}
