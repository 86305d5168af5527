import { ApiError } from '@upc/protocol';
import { expect } from 'vitest';

/** The ApiError a call rejects with; fails the test if it resolves or throws something else. */
export async function problemOf(promise: Promise<unknown>): Promise<ApiError> {
  const outcome = await promise.then(
    (value: unknown) => ({ resolved: true as const, value }),
    (error: unknown) => ({ resolved: false as const, error }),
  );
  if (outcome.resolved) throw new Error(`expected an API error, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(ApiError);
  return outcome.error as ApiError;
}
