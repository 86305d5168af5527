import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type Database = PrismaClient;
export type Transaction = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

export function connectDatabase(url: string): Database {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 10 }) });
}
