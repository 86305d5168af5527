import { useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from 'react';

/**
 * History-based routing without a library: the server answers index.html for every path outside /api,
 * so /users and friends can be loaded, reloaded and bookmarked.
 */
const listeners = new Set<() => void>();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener('popstate', listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener('popstate', listener);
  };
}

function currentPath(): string {
  const path = window.location.pathname.replace(/\/+$/, '');
  return path === '' ? '/' : path;
}

/** The path and query string, as `navigate` takes them. */
function currentLocation(): string {
  return currentPath() + window.location.search;
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to === currentLocation()) return;
  if (options.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  for (const listener of listeners) listener();
}

/** The current path, without a trailing slash ("/" for the root). */
export function usePath(): string {
  return useSyncExternalStore(subscribe, currentPath);
}

const currentSearch = () => window.location.search;

/** A parameter of the query string (`?path=home/docs`), or null when it is absent. */
export function useQueryParam(name: string): string | null {
  return new URLSearchParams(useSyncExternalStore(subscribe, currentSearch)).get(name);
}

/** The current path with the query parameter `name` set to `value` (or removed, for null). */
export function withQueryParam(name: string, value: string | null): string {
  const params = new URLSearchParams(window.location.search);
  if (value === null) params.delete(name);
  else params.set(name, value);
  // A slash needs no escaping in a query string: ?path=home/docs reads better than home%2Fdocs.
  const query = params.toString().replace(/%2F/gi, '/');
  return currentPath() + (query === '' ? '' : `?${query}`);
}

type LinkProps = Omit<AnchorHTMLAttributes<HTMLAnchorElement>, 'href'> & { to: string };

/** An <a> that navigates in place; a modified click (new tab, …) is left to the browser. */
export function Link({ to, onClick, ...rest }: LinkProps) {
  const path = usePath();
  const handle = (event: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  };
  return <a href={to} aria-current={path === to ? 'page' : undefined} onClick={handle} {...rest} />;
}
