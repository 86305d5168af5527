import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type Database = PrismaClient;
export type Transaction = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/**
 * Sessions run in UTC whatever the database's default time zone: the adapter reads every timestamptz
 * as if its offset were +00:00, and GET /stats counts by UTC hour and day.
 */
export function connectDatabase(url: string): Database {
  return new PrismaClient({
    adapter: new PrismaPg({ connectionString: url, max: 10, options: '-c timezone=UTC' }),
  });
}
