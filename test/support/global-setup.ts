import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../apps/server/src/embedded-postgres.js';
import { applyMigrations } from '../../apps/server/src/repositories/migration.repository.js';
import { startS3rver } from './s3rver.js';

export const TEMPLATE_DATABASE = 'upc_template';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A URL to the test cluster's `postgres` database, for creating per-file databases. */
    postgresAdminUrl: string;
    s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  }
}

/**
 * Starts the real services every test file shares: one PostgreSQL cluster (with a migrated template
 * database that each file clones) and one S3-API server, both on loopback, both gone afterwards.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'upc-test-'));
  await chmod(dir, 0o711); // when run as root, PostgreSQL runs as `postgres` and must reach its cluster
  const postgres = await startEmbeddedPostgres(join(dir, 'postgres'), (line) => {
    process.stderr.write(`${line}\n`);
  });
  const adminUrl = postgres.url.replace(/\/upc$/, '/postgres');
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  await client.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  await client.end();
  await applyMigrations(adminUrl.replace(/\/postgres$/, `/${TEMPLATE_DATABASE}`));
  const s3 = await startS3rver(join(dir, 's3'));

  project.provide('postgresAdminUrl', adminUrl);
  project.provide('s3', {
    endpoint: s3.endpoint,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
  });
  return async () => {
    await s3.stop();
    await postgres.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
