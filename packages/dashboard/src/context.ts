import { createContext, useContext } from 'react';
import type { TroveApi } from './api/client';
import type { Me } from './api/types';

export interface Session {
  api: TroveApi;
  me: Me;
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
export function canRuntime(me: Me): boolean {
  return me.scope === 'workspace';
}

export function isAdmin(me: Me): boolean {
  return me.scope === 'admin';
}
