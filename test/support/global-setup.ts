import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { ProvidedContext } from 'vitest';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../apps/server/src/embedded-postgres.js';
import { applyMigrations } from '../../apps/server/src/repositories/migration.repository.js';
import { TEMPLATE_DATABASE } from './database.js';
import { startS3rver } from './s3rver.js';

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
 *
 * To run the same tests against services you run yourself (say PostgreSQL and MinIO from
 * `docker compose up postgres minio`), set UPC_TEST_POSTGRES_URL to a superuser URL of its
 * `postgres` database, and UPC_TEST_S3_ENDPOINT, UPC_TEST_S3_ACCESS_KEY_ID and
 * UPC_TEST_S3_SECRET_ACCESS_KEY (UPC_TEST_S3_REGION defaults to us-east-1).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'upc-test-'));
  await chmod(dir, 0o711); // when run as root, PostgreSQL runs as `postgres` and must reach its cluster
  const stops: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })];
  try {
    project.provide('postgresAdminUrl', await postgres(join(dir, 'postgres'), stops));
    project.provide('s3', await s3(join(dir, 's3'), stops));
  } catch (error) {
    await stopAll(stops);
    throw error;
  }
  return () => stopAll(stops);
}

async function postgres(dir: string, stops: (() => Promise<void>)[]): Promise<string> {
  let adminUrl = process.env.UPC_TEST_POSTGRES_URL;
  if (!adminUrl) {
    const cluster = await startEmbeddedPostgres(dir, (line) => {
      process.stderr.write(`${line}\n`);
    });
    stops.push(() => cluster.stop());
    adminUrl = cluster.url.replace(/\/upc$/, '/postgres');
  }
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  } finally {
    await client.end();
  }
  const template = new URL(adminUrl);
  template.pathname = `/${TEMPLATE_DATABASE}`;
  await applyMigrations(template.toString());
  return adminUrl;
}

async function s3(dir: string, stops: (() => Promise<void>)[]): Promise<ProvidedContext['s3']> {
  const endpoint = process.env.UPC_TEST_S3_ENDPOINT;
  if (endpoint) {
    return {
      endpoint,
      region: process.env.UPC_TEST_S3_REGION ?? 'us-east-1',
      accessKeyId: process.env.UPC_TEST_S3_ACCESS_KEY_ID ?? '',
      secretAccessKey: process.env.UPC_TEST_S3_SECRET_ACCESS_KEY ?? '',
    };
  }
  const server = await startS3rver(dir);
  stops.push(() => server.stop());
  const { region, accessKeyId, secretAccessKey } = server;
  return { endpoint: server.endpoint, region, accessKeyId, secretAccessKey };
}

async function stopAll(stops: (() => Promise<void>)[]): Promise<void> {
  for (const stop of stops.reverse()) await stop();
}
