/** A minimal Server-Sent Events reader (the WHATWG "event stream" grammar, without `retry`). */

/** One dispatched SSE message. */
export interface SseMessage {
  /** The `event:` field, `message` when absent. */
  event: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** The `id:` field of this message, or `undefined` when it carried none. */
  id: string | undefined;
}

/**
 * Yields each message of an SSE body: comments (`: ping` heartbeats) are skipped, and a
 * message without `data` is not dispatched, as in browsers. Ending the iteration early
 * (break, return, throw) cancels the body, which closes the connection.
 */
export async function* readSseMessages(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  let event = '';
  let id: string | undefined;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.search(/\r\n|\r|\n/)) !== -1) {
        // A trailing CR may be the first half of a CRLF split across chunks.
        if (!done && nl === buffer.length - 1 && buffer[nl] === '\r') break;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id };
          data = [];
          event = '';
          id = undefined;
        } else if (line.startsWith(':')) {
          continue;
        } else {
          const colon = line.indexOf(':');
          const field = colon === -1 ? line : line.slice(0, colon);
          let value = colon === -1 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'data') data.push(value);
          else if (field === 'event') event = value;
          // The spec ignores ids containing NUL.
          else if (field === 'id' && !value.includes('\0')) id = value;
        }
      }
      // A message cut off by the end of the body is incomplete and is not dispatched.
      if (done) return;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * Yields the `data` of each message, skipping comments (`: ping` heartbeats) and the
 * other fields.
 */
export async function* readSseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  for await (const message of readSseMessages(body)) yield message.data;
}
