/** A real Trove server for a test file, and SDK clients of it (the framework adapters' tests). */
import { afterAll, beforeAll } from 'vitest';
import { TroveAdminClient, TroveClient } from 'trove-sdk';
import { startServer, type StartedServer } from './server.js';

export interface Session {
  server: StartedServer;
  /** A workspace-key client without a namespace (use `withNamespace`). */
  client: TroveClient;
  admin: TroveAdminClient;
}

/** Starts the built server (with `env` added to its environment) before the file's tests, stops it after them. */
export function useTrove(env: Record<string, string> = {}): Session {
  const session = {} as Session;
  beforeAll(async () => {
    session.server = await startServer({ env });
    session.client = new TroveClient({
      apiKey: session.server.runtimeKey,
      baseUrl: session.server.baseUrl,
      maxRetries: 0,
    });
    session.admin = new TroveAdminClient({
      apiKey: session.server.adminKey,
      baseUrl: session.server.baseUrl,
      maxRetries: 0,
    });
  });
  afterAll(async () => {
    await session.server?.close();
  });
  return session;
}

let counter = 0;
/** A namespace name no other test of the file uses. */
export function freshNamespace(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/**
 * A client of `namespace` whose first conditional write (`ifMatch`) is preceded by another writer's write of
 * `intruding` to the same path: how the adapters' optimistic edits are raced.
 */
export function racingClient(
  session: Session,
  namespace: string,
  intruding: string,
): { client: TroveClient; raced(): boolean } {
  let raced = false;
  const { runtimeKey, baseUrl } = session.server;
  class RacingClient extends TroveClient {
    override async write(path: string, content: string, options?: Parameters<TroveClient['write']>[2]) {
      if (options?.ifMatch && !raced) {
        raced = true;
        await new TroveClient({ apiKey: runtimeKey, baseUrl, namespace }).write(path, intruding);
      }
      return super.write(path, content, options);
    }
  }
  return { client: new RacingClient({ apiKey: runtimeKey, baseUrl, namespace, maxRetries: 0 }), raced: () => raced };
}
