/** `serveStdio`: runs the Trove MCP server on stdin/stdout until the host closes the pipe. */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { TroveClient } from 'trove-sdk';
import { createTroveMcpServer, type TroveMcpServerOptions } from './server.js';

/** Options of `serveStdio`. */
export interface ServeStdioOptions extends TroveMcpServerOptions {
  /** Stops the server (e.g. on SIGINT). */
  signal?: AbortSignal;
  stdin?: NodeJS.ReadableStream;
  stdout?: NodeJS.WritableStream;
}

/** Serves until stdin ends, the transport closes or `signal` aborts. Nothing but protocol goes to stdout. */
export async function serveStdio(client: TroveClient, opts: ServeStdioOptions = {}): Promise<void> {
  const stdin = (opts.stdin ?? process.stdin) as NodeJS.ReadStream;
  const stdout = (opts.stdout ?? process.stdout) as NodeJS.WriteStream;
  const server = createTroveMcpServer(client, opts);
  const transport = new StdioServerTransport(stdin, stdout);
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
  });
  await server.connect(transport);
  // The SDK transport does not watch for end of input; a host that closes the pipe is done with us.
  const stop = () => void server.close().catch(() => {});
  stdin.once('end', stop);
  stdin.once('close', stop);
  opts.signal?.addEventListener('abort', stop, { once: true });
  await closed;
}
