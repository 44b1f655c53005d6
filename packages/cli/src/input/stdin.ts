/** Reading piped input and asking for secrets on a terminal. */
import type { InStream, IO } from '../context.js';
import { DeclinedError, InterruptedError } from '../errors.js';

/** All of stdin as bytes. */
export async function readAll(stdin: InStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin as AsyncIterable<Buffer | string>) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads a line without echoing it (API keys). Ctrl-C cancels. */
export function promptSecret(io: IO, question: string): Promise<string> {
  const stdin = io.stdin;
  return new Promise((resolve, reject) => {
    io.stderr.write(question);
    let value = '';
    const wasRaw = (stdin as { isRaw?: boolean }).isRaw === true;
    stdin.setRawMode?.(true);
    stdin.resume();
    const finish = (err: Error | null) => {
      stdin.removeListener('data', onData);
      stdin.setRawMode?.(wasRaw);
      stdin.pause();
      io.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (data: Buffer | string) => {
      for (const ch of data.toString()) {
        if (ch === '\r' || ch === '\n') return finish(null);
        if (ch === '\u0003') return finish(new InterruptedError());
        if (ch === '\u0004') return finish(new DeclinedError());
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
