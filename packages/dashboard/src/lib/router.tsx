import { useEffect, useState, type AnchorHTMLAttributes, type MouseEvent } from 'react';

/** Where the server mounts the app; every in-app URL lives below it. */
export const BASE = '/dashboard';

export interface Route {
  page: string;
  params: URLSearchParams;
}

function current(): Route {
  let rest = window.location.pathname.startsWith(BASE) ? window.location.pathname.slice(BASE.length) : '';
  rest = rest.replace(/^\/+|\/+$/g, '');
  return { page: rest.split('/')[0] ?? '', params: new URLSearchParams(window.location.search) };
}

const listeners = new Set<() => void>();

export function href(page: string, params?: Record<string, string | null | undefined>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) if (v) qs.set(k, v);
  const s = qs.toString();
  return `${BASE}/${page}${s ? `?${s}` : ''}`;
}

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (to === window.location.pathname + window.location.search) return;
  if (opts.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  listeners.forEach((l) => l());
}

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const update = () => setRoute(current());
    listeners.add(update);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
    };
  }, []);
  return route;
}

/** An ordinary link that navigates in-app, keeping modified clicks (new tab, etc.) native. */
export function Link(props: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const { onClick, ...rest } = props;
  const handle = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.href);
  };
  return <a {...rest} onClick={handle} />;
}
