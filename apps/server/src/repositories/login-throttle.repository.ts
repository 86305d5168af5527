import { Inject, Injectable } from '@nestjs/common';
import { Prisma } from '../generated/prisma/client.js';
import type { Database, Transaction } from './database.js';
import { DATABASE } from './tokens.js';

/** How many sign-in tries a throttle lets through at once, and how long each one past that waits. */
export interface ThrottleRule {
  /** Tries counted before any has to wait. */
  limit: number;
  /** The wait after the limit's try; it doubles with each further try, up to windowSeconds. */
  backoffSeconds: number;
  /** A throttle quiet this long starts again from nothing (and no wait is longer). */
  windowSeconds: number;
}

export type ThrottleScope = 'user' | 'address';

export type Admission =
  { admitted: true } | { admitted: false; scope: ThrottleScope; failures: number; retryAfterSeconds: number };

/** The row of an address's own throttle, over every username tried from it. */
const EVERY_USERNAME = '';

/** The wait after a throttle's `failures`-th try, in seconds: none below the limit, then doubling. */
const waitAfter = (failures: Prisma.Sql, rule: ThrottleRule) => Prisma.sql`
  CASE WHEN ${failures} < ${rule.limit}::int THEN 0::float8
       ELSE least(${rule.backoffSeconds}::float8 * power(2, least(${failures} - ${rule.limit}::int, 40)),
                  ${rule.windowSeconds}::float8) END`;

class Refused extends Error {
  constructor(readonly admission: Admission) {
    super('refused');
  }
}

/**
 * Sign-in throttles, in Postgres so that every replica enforces the same ones. A try is counted
 * before its password is checked, each row by one statement under the row's lock with the database's
 * clock, so parallel tries cannot pass the limit together.
 */
@Injectable()
export class LoginThrottleRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  /**
   * Counts a try of `username` from `address` against both throttles (the pair's, the address's) in
   * one transaction: both count it, or, when either must wait, neither does.
   */
  async admit(
    username: string,
    address: string,
    rules: Record<ThrottleScope, ThrottleRule>,
  ): Promise<Admission> {
    const rows: [ThrottleScope, string][] = [
      ['user', username],
      ['address', EVERY_USERNAME],
    ];
    try {
      return await this.db.$transaction(async (tx) => {
        for (const [scope, name] of rows) {
          if (!(await charge(tx, name, address, rules[scope]))) {
            throw new Refused(await refusal(tx, scope, name, address, rules[scope]));
          }
        }
        return { admitted: true as const };
      });
    } catch (error) {
      if (error instanceof Refused) return error.admission;
      throw error;
    }
  }

  /**
   * The right password: the pair starts again from nothing, and the address's count takes back the
   * try `admit` counted.
   */
  async succeeded(username: string, address: string): Promise<void> {
    await this.db.$transaction([
      this.db.$executeRaw`DELETE FROM login_throttles WHERE username = ${username} AND address = ${address}`,
      this.db.$executeRaw`
        UPDATE login_throttles SET failures = greatest(failures - 1, 0)
        WHERE username = ${EVERY_USERNAME} AND address = ${address}`,
    ]);
  }

  /** Forgets throttles quiet for `windowSeconds`: they would start again from nothing anyway. */
  async prune(windowSeconds: number): Promise<void> {
    await this.db.$executeRaw`
      DELETE FROM login_throttles WHERE last_at <= clock_timestamp() - make_interval(secs => ${windowSeconds}::float8)`;
  }
}

/** Counts a try unless the throttle says wait; true when counted. */
async function charge(
  tx: Transaction,
  username: string,
  address: string,
  rule: ThrottleRule,
): Promise<boolean> {
  const quiet = Prisma.sql`t.last_at <= clock_timestamp() - make_interval(secs => ${rule.windowSeconds}::float8)`;
  const rows = await tx.$queryRaw<{ failures: number }[]>`
    INSERT INTO login_throttles AS t (username, address, failures, last_at)
    VALUES (${username}, ${address}, 1, clock_timestamp())
    ON CONFLICT (username, address) DO UPDATE
      SET failures = CASE WHEN ${quiet} THEN 1 ELSE t.failures + 1 END, last_at = clock_timestamp()
      WHERE ${quiet}
         OR t.last_at + make_interval(secs => ${waitAfter(Prisma.sql`t.failures`, rule)}) <= clock_timestamp()
    RETURNING failures`;
  return rows.length > 0;
}

async function refusal(
  tx: Transaction,
  scope: ThrottleScope,
  username: string,
  address: string,
  rule: ThrottleRule,
): Promise<Admission> {
  const rows = await tx.$queryRaw<{ failures: number; wait: number }[]>`
    SELECT failures,
           extract(epoch FROM last_at + make_interval(secs => ${waitAfter(Prisma.sql`failures`, rule)})
                              - clock_timestamp())::float8 AS wait
    FROM login_throttles WHERE username = ${username} AND address = ${address}`;
  const row = rows[0];
  return {
    admitted: false,
    scope,
    failures: row?.failures ?? 0,
    retryAfterSeconds: Math.max(1, Math.ceil(row?.wait ?? 1)),
  };
}
