import { TroveAdminClient, TroveClient } from 'trove-sdk';

/** The SDK clients of one signed-in key; every call of the dashboard goes through them. */
export interface TroveClients {
  /** Identity, events and namespaces (any key); its `runtime()` children do files, exec and snapshots. */
  trove: TroveClient;
  /** Keys, webhooks and namespace deletion (admin keys). */
  admin: TroveAdminClient;
  /** The runtime client of one namespace (`X-Namespace`), made once per namespace. */
  runtime(namespace: string): TroveClient;
  /** A runtime client of `namespace` over another transport (uploads that report progress), still watching for a rejected key. */
  runtimeWithFetch(namespace: string, transport: typeof fetch): TroveClient;
}

export interface ClientOptions {
  apiKey: string;
  /** Where the API is: the page's own origin in the browser. */
  baseUrl?: string;
  /** Known after sign-in (`GET /v1/me`); saves the SDK asking again. */
  workspaceId?: string;
  /**
   * Called with the server's `detail` when it rejects the key (any 401): the key was revoked or
   * is wrong, so the app signs out.
   */
  onUnauthorized?: (detail: string) => void;
  /** The transport (default: the global fetch); uploads pass one that reports progress. */
  fetch?: typeof fetch;
}

/** Clients for `apiKey`, sharing one transport that watches for a rejected key. */
export function createClients(options: ClientOptions): TroveClients {
  const base = { apiKey: options.apiKey, baseUrl: options.baseUrl ?? pageOrigin(), workspaceId: options.workspaceId };
  const shared = {
    ...base,
    fetch: watchUnauthorized(options.fetch ?? globalThis.fetch.bind(globalThis), options.onUnauthorized),
  };
  const trove = new TroveClient(shared);
  const admin = new TroveAdminClient(shared);
  const byNamespace = new Map<string, TroveClient>();
  return {
    trove,
    admin,
    runtime(namespace) {
      let client = byNamespace.get(namespace);
      if (!client) byNamespace.set(namespace, (client = trove.withNamespace(namespace)));
      return client;
    },
    runtimeWithFetch(namespace, transport) {
      return new TroveClient({ ...base, namespace, fetch: watchUnauthorized(transport, options.onUnauthorized) });
    },
  };
}

function pageOrigin(): string {
  if (typeof window === 'undefined') throw new Error('createClients needs a baseUrl outside the browser');
  return window.location.origin;
}

function watchUnauthorized(base: typeof fetch, onUnauthorized: ((detail: string) => void) | undefined): typeof fetch {
  if (!onUnauthorized) return base;
  return async (input, init) => {
    const res = await base(input, init);
    if (res.status === 401) {
      // A copy: the SDK still reads the original body to build its AuthenticationError.
      const body = (await res
        .clone()
        .json()
        .catch(() => null)) as { detail?: unknown } | null;
      onUnauthorized(typeof body?.detail === 'string' ? body.detail : 'Invalid API key');
    }
    return res;
  };
}
