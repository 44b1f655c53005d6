import type { TroveApi } from './client';
import type { TroveEvent } from './types';

export type StreamMessage = { type: 'connected' } | TroveEvent;

/** One Server-Sent Events message. */
export interface SseMessage {
  /** The `event:` field, `message` when absent. */
  event: string;
  /** The `data:` lines joined with newlines. */
  data: string;
  /** The `id:` field, when the message had one. */
  id: string | undefined;
}

/**
 * Reads an SSE body (fetch, because EventSource cannot send the Authorization header) and calls
 * `onMessage` for each message; comments (heartbeats) are skipped. Resolves when the body ends.
 */
export async function readSse(body: ReadableStream<Uint8Array<ArrayBuffer>>, onMessage: (msg: SseMessage) => void): Promise<void> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data: string[] = [];
  let event = '';
  let id: string | undefined;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // The SSE grammar allows \r\n, \r or \n line endings; a trailing \r may be half of a \r\n.
    const lines = buffer.split(/\r\n|\r(?!$)|\n/);
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') {
        if (data.length) onMessage({ event: event || 'message', data: data.join('\n'), id });
        data = [];
        event = '';
        id = undefined;
      } else if (line.startsWith(':')) {
        // Heartbeat comment (": ping").
      } else {
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const val = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') data.push(val);
        else if (field === 'event') event = val;
        else if (field === 'id') id = val;
      }
    }
  }
}

/**
 * The workspace's live event feed (`…/webhooks/stream`). Resolves when the server ends the
 * stream; rejects on network errors and with an AbortError when `signal` fires.
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
  await readSse(res.body, (msg) => dispatch(msg.data, onMessage));
}

function dispatch(payload: string, onMessage: (msg: StreamMessage) => void): void {
  try {
    onMessage(JSON.parse(payload) as StreamMessage);
  } catch {
    // A malformed frame is skipped rather than killing the live feed.
  }
}
