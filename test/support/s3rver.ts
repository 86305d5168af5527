import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

export interface S3rverHandle {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

const BUCKET = 'upc-test';

// Runs in the child. Exits when stdin closes, so a crashed test run cannot leave it behind.
const CHILD_SOURCE = `
const S3rver = require(process.argv[1]);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory: process.argv[2],
  configureBuckets: [{ name: process.argv[3] }],
});
server.run().then(({ port }) => console.log(JSON.stringify({ port })));
process.stdin.on('end', () => process.exit(0)).resume();
`;

/**
 * Starts s3rver on a free loopback port, storing its data under dir, with one bucket.
 *
 * It runs in a child process because s3rver encrypts ListObjectsV2 continuation tokens with DES, which
 * OpenSSL 3 only offers with --openssl-legacy-provider: in-process, every truncated listing fails with
 * InternalError ("digital envelope routines::unsupported").
 */
export async function startS3rver(dir: string): Promise<S3rverHandle> {
  const s3rverMain = createRequire(import.meta.url).resolve('s3rver');
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '-e', CHILD_SOURCE, s3rverMain, dir, BUCKET],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = once(child, 'exit');
  const firstLine = createInterface({ input: child.stdout })[Symbol.asyncIterator]().next();
  const started = await Promise.race([firstLine, exited.then(() => undefined)]);
  if (started?.done !== false) throw new Error('s3rver exited before it started listening');
  const { port } = JSON.parse(started.value) as { port: number };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    // s3rver only accepts continuation tokens it issued for us-east-1.
    region: 'us-east-1',
    bucket: BUCKET,
    // s3rver's only account.
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin.end();
      await exited;
    },
  };
}
