/** The `--json` report of a key as `login` and `whoami` show it: the key only ever masked. */
import type { Identity } from 'trove-sdk';
import { maskKey } from './format.js';

export function identityReport(input: {
  profile: string | null;
  source?: 'profile' | 'env';
  configPath: string;
  baseUrl: string;
  me: Identity;
  /** The namespace commands use (the lock, else the configured one). */
  namespace: string | null;
  apiKey: string;
}): Record<string, unknown> {
  const { me } = input;
  return {
    profile: input.profile,
    ...(input.source ? { source: input.source } : {}),
    configPath: input.configPath,
    baseUrl: input.baseUrl,
    workspaceId: me.workspaceId,
    keyId: me.keyId,
    keyName: me.keyName,
    scope: me.scope,
    namespaceLock: me.namespace,
    namespace: input.namespace,
    apiKey: maskKey(input.apiKey),
  };
}
