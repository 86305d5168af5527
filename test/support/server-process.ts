import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { freePort } from '../../apps/server/src/embedded-postgres.js';
import { ADMIN_PASSWORD } from './server.js';

export const SERVER_MAIN = fileURLToPath(new URL('../../apps/server/dist/main.js', import.meta.url));

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process printed so far, stdout and stderr. */
  output(): string;
  /** Sends the signal and resolves with the exit code once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * What a server process needs to run on the tests' shared services: `databaseUrl`, a bucket of its
 * own on the shared S3-API server, the tests' admin password, quiet logs.
 */
export function serverProcessEnv(databaseUrl: string, logLevel = 'error'): Record<string, string> {
  const s3 = inject('s3');
  return {
    DATABASE_URL: databaseUrl,
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: s3.region,
    S3_BUCKET: `t-${randomBytes(6).toString('hex')}`,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    UPC_ADMIN_PASSWORD: ADMIN_PASSWORD,
    UPC_LOG_LEVEL: logLevel,
  };
}

/** Runs the built server (`npm start`'s program) as its own process and waits until it answers health. */
export async function startServerProcess(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<ServerProcess> {
  if (!existsSync(SERVER_MAIN)) throw new Error(`${SERVER_MAIN} is missing: run "npm run build" first`);
  const port = env.PORT ?? String(await freePort());
  const child = spawn(process.execPath, [SERVER_MAIN], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOST: '127.0.0.1', ...env, PORT: port },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit');
  const scheme = env.TLS_CERT_FILE ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  const handle: ServerProcess = {
    url,
    child,
    output: () => output,
    async stop(signal = 'SIGINT') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}:\n${output}`);
    if (scheme === 'http' && (await answersHealth(url))) return handle;
    if (scheme === 'https' && output.includes('listening on')) return handle;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await handle.stop('SIGKILL');
  throw new Error(`the server did not become healthy in ${timeoutMs} ms:\n${output}`);
}

async function answersHealth(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/api/v1/health`)).status === 200;
  } catch {
    return false;
  }
}
