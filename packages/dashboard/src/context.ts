import { createContext, useContext } from 'react';
import type { Identity } from 'trove-sdk';
import type { TroveClients } from './lib/trove';

export interface Session extends TroveClients {
  me: Identity;
  /** The namespace runtime pages act on (null until one is chosen). */
  namespace: string | null;
  /** True when the key is locked to one namespace. */
  namespaceLocked: boolean;
  setNamespace: (ns: string) => void;
  signOut: (message?: string) => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside of a signed-in view');
  return s;
}

/** Whether this key may use runtime endpoints (files, exec, snapshots). */
export function canRuntime(me: Identity): boolean {
  return me.scope === 'workspace';
}

export function isAdmin(me: Identity): boolean {
  return me.scope === 'admin';
}
