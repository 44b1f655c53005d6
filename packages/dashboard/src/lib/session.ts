// The key lives in sessionStorage: it survives reloads of this tab but not closing it,
// and is never shared with other tabs or written to disk by the page.
const KEY = 'trove.apiKey';
const NAMESPACE = 'trove.namespace';

export function loadKey(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function saveKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}

export function clearSession(): void {
  try {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(NAMESPACE);
  } catch {
    // Storage disabled: nothing was stored either.
  }
}

export function loadNamespace(): string | null {
  try {
    return sessionStorage.getItem(NAMESPACE);
  } catch {
    return null;
  }
}

export function saveNamespace(ns: string): void {
  try {
    sessionStorage.setItem(NAMESPACE, ns);
  } catch {
    // Not fatal: the namespace is also in the URL.
  }
}
