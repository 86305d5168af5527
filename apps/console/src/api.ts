import { ApiError, UpcClient } from '@upc/protocol';

/** Where the signed-in user's token is kept: this tab's session storage, under this key. */
export const TOKEN_KEY = 'upc.token';

let onExpired: () => void = () => undefined;

/** Called when the server answers 401 to a signed-in request: the token expired or was revoked. */
export function setExpiredHandler(handler: () => void): void {
  onExpired = handler;
}

function readToken(): string | undefined {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * The typed client of @upc/protocol, against the origin that served the console. Its fetch is wrapped:
 * the browser's fetch must not be called as a method of another object ("Illegal invocation"), and a
 * 401 on anything but the sign-in itself ends the session.
 */
export const api = new UpcClient({
  baseUrl: window.location.origin,
  token: readToken(),
  fetch: async (input, init) => {
    const res = await window.fetch(input, init);
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (res.status === 401 && !url.endsWith('/auth/login')) onExpired();
    return res;
  },
});

export function saveToken(token: string | undefined): void {
  api.token = token;
  try {
    if (token === undefined) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Storage may be unavailable (private mode): the session then lasts as long as the page.
  }
}

/** The sign-in limit's answer: how long this address waits before its next try (it grows with each). */
function tooManyAttempts(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return 'Too many attempts. Wait a little, then try again.';
  const minutes = Math.ceil(seconds / 60);
  const wait =
    seconds < 60
      ? `${seconds} second${seconds === 1 ? '' : 's'}`
      : `${minutes} minute${minutes === 1 ? '' : 's'}`;
  return `Too many attempts. Try again in ${wait}.`;
}

/** A sentence for people about what went wrong with a request. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    const { title, detail } = error.problem;
    if (error.code === 'invalid_credentials') return 'Wrong username or password.';
    if (error.code === 'user_disabled') return 'This user is disabled. Ask an admin to enable it.';
    if (error.code === 'rate_limited') return tooManyAttempts(Number(error.problem.retryAfterSeconds));
    if (detail && detail !== title) return `${title}: ${detail}`;
    return `${title} (HTTP ${error.status}).`;
  }
  if (error instanceof TypeError) {
    return 'Cannot reach the uPC server. Check your connection, or that the server is running, and try again.';
  }
  if (error instanceof Error && error.name === 'ZodError') {
    return 'The server sent an answer the console does not understand. Is the console up to date?';
  }
  return error instanceof Error ? error.message : 'Something went wrong.';
}
