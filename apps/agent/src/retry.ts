import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError } from '@upc/protocol';

/** The server or its storage could not be reached; worth trying again later. */
export function isTransient(error: unknown): boolean {
  if (error instanceof ApiError) return error.status >= 500 || error.status === 429;
  if (error instanceof TypeError) return true; // fetch: connection refused, reset, DNS
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EPIPE';
}

export interface RetryOptions {
  attempts?: number;
  /** First wait; doubled each time, with jitter, up to `maxDelayMs`. */
  delayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
}

/** Runs `task`, trying again after transient failures with exponential backoff. */
export async function withRetry<T>(task: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 4;
  let delay = options.delayMs ?? 200;
  for (let attempt = 1; ; attempt++) {
    try {
      return await task();
    } catch (error) {
      if (attempt >= attempts || !isTransient(error) || options.signal?.aborted) throw error;
      await sleep(delay * (0.75 + Math.random() / 2), undefined, { signal: options.signal });
      delay = Math.min(delay * 2, options.maxDelayMs ?? 5000);
    }
  }
}
