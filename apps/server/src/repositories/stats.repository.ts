import { Inject, Injectable } from '@nestjs/common';
import { DATABASE } from './tokens.js';
import type { Database } from './database.js';

export const ACTIVITY_HOURS = 24;
export const STORAGE_DAYS = 30;

export interface StatsRows {
  users: number;
  workspaces: number;
  versionsToday: number;
  /** ACTIVITY_HOURS entries, oldest first; the last is the current hour (UTC). */
  activity: { hour: Date; versions: number }[];
  /** STORAGE_DAYS entries, oldest first; the last is today (UTC), so its bytes are everything stored. */
  storage: { day: string; bytes: number }[];
}

/** Totals and series over every workspace, for the console's overview. */
@Injectable()
export class StatsRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  /**
   * Three statements in one repeatable-read transaction: one snapshot and one `now()` for all of
   * them, and each table read once. Hours and days are UTC whatever the session's time zone.
   */
  async read(): Promise<StatsRows> {
    const [totals, activity, storage] = await this.db.$transaction(
      [
        this.db.$queryRaw<{ users: number; workspaces: number; versions_today: number }[]>`
          SELECT (SELECT count(*) FROM users)::int AS users,
                 (SELECT count(*) FROM workspaces)::int AS workspaces,
                 (SELECT count(*) FROM versions
                   WHERE created_at >= date_trunc('day', now(), 'UTC'))::int AS versions_today`,
        // Versions per hour, the last 24 (ACTIVITY_HOURS): counted for the hours that have any,
        // then zero-filled by the series.
        this.db.$queryRaw<{ hour: Date; versions: number }[]>`
          WITH bounds AS (
            SELECT date_trunc('hour', now(), 'UTC') - interval '23 hours' AS first
          ), counts AS (
            SELECT date_trunc('hour', v.created_at, 'UTC') AS hour, count(*)::int AS versions
            FROM versions v, bounds b WHERE v.created_at >= b.first GROUP BY 1
          )
          SELECT h.hour, coalesce(c.versions, 0) AS versions
          FROM bounds b
          CROSS JOIN generate_series(b.first, b.first + interval '23 hours', interval '1 hour') AS h(hour)
          LEFT JOIN counts c ON c.hour = h.hour
          ORDER BY h.hour`,
        // Bytes stored at the end of each of the last 30 days (STORAGE_DAYS): what each day added
        // (standalone objects and packs, by when they were stored), everything older folded into
        // the first day, summed up to each day. A created_at past today (clock skew) counts today,
        // so today's total is every byte stored.
        this.db.$queryRaw<{ day: string; bytes: bigint }[]>`
          WITH bounds AS (
            SELECT (now() AT TIME ZONE 'UTC')::date AS today, (now() AT TIME ZONE 'UTC')::date - 29 AS first
          ), stored AS (
            SELECT size, created_at FROM stored_objects WHERE pack_hash IS NULL
            UNION ALL
            SELECT size, created_at FROM packs
          ), added AS (
            SELECT least(greatest((s.created_at AT TIME ZONE 'UTC')::date, b.first), b.today) AS day,
                   sum(s.size) AS bytes
            FROM stored s, bounds b GROUP BY 1
          ), days AS (
            SELECT b.first + n AS day FROM bounds b, generate_series(0, 29) AS n
          )
          SELECT to_char(d.day, 'YYYY-MM-DD') AS day,
                 (sum(coalesce(a.bytes, 0)) OVER (ORDER BY d.day))::bigint AS bytes
          FROM days d LEFT JOIN added a ON a.day = d.day
          ORDER BY d.day`,
      ],
      { isolationLevel: 'RepeatableRead' },
    );
    const row = totals[0];
    return {
      users: row?.users ?? 0,
      workspaces: row?.workspaces ?? 0,
      versionsToday: row?.versions_today ?? 0,
      activity,
      storage: storage.map((entry) => ({ day: entry.day, bytes: Number(entry.bytes) })),
    };
  }
}
