import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { createServer } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { applyMigrations } from './repositories/migration.repository.js';
import { createObjectStore } from './store/create.js';

const logger = new Logger('uPC');

async function main(): Promise<void> {
  const started = performance.now();
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`upc-server: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const database = config.databaseUrl
    ? { url: config.databaseUrl, stop: () => Promise.resolve() }
    : await startEmbeddedPostgres(join(config.dataDir, 'postgres'), (line) => {
        logger.warn(line);
      });
  const stops: (() => Promise<void>)[] = [database.stop];
  const shutdown = async (signal: string) => {
    logger.log(`${signal}: shutting down`);
    for (const stop of stops.reverse()) {
      await stop().catch((error: unknown) => {
        logger.error(`while stopping: ${String(error)}`);
      });
    }
    process.exit(0);
  };
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(1);
      stopping = true;
      void shutdown(signal);
    });
  }

  const migrations = await applyMigrations(database.url);
  if (migrations.applied.length > 0) logger.log(`applied migrations: ${migrations.applied.join(', ')}`);
  const store = await createObjectStore(config.store);
  const server = await createServer(config, database.url, store);
  stops.push(() => server.close());
  await server.app.listen({ port: config.port, host: config.host });
  const scheme = config.tls ? 'https' : 'http';
  const where = config.databaseUrl
    ? 'PostgreSQL at DATABASE_URL'
    : `embedded PostgreSQL in ${config.dataDir}`;
  const storeName = config.store.kind === 's3' ? `S3 bucket ${config.store.bucket}` : config.store.root;
  logger.log(
    `listening on ${scheme}://localhost:${config.port} (${where}; objects in ${storeName}) ` +
      `— ready in ${Math.round(performance.now() - started)} ms`,
  );
  if (!existsSync(join(config.consoleDir, 'index.html'))) {
    logger.warn(
      `the console is not built (no ${join(config.consoleDir, 'index.html')}): run "npm run build"`,
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `upc-server: could not start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
