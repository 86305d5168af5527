import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { UpcClient } from '@upc/protocol';
import { inject } from 'vitest';
import { createServer, type Server } from '../../apps/server/src/app.js';
import { loadConfig } from '../../apps/server/src/config.js';
import { ensureBucket, S3ObjectStore } from '../../apps/server/src/store/index.js';
import { createTestDatabase } from './database.js';

export const ADMIN_PASSWORD = 'admin-password-for-tests';

export interface TestServer {
  url: string;
  port: number;
  databaseUrl: string;
  bucket: string;
  server: Server;
  /** A client with no token. */
  anonymous(): UpcClient;
  /** A client signed in as the bootstrap admin. */
  admin(): Promise<UpcClient>;
  /** Creates a user (through the admin API) and returns a client signed in as them. */
  user(username: string, password?: string): Promise<{ client: UpcClient; id: string }>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  env?: Record<string, string>;
  databaseUrl?: string;
  bucket?: string;
  /** Listen here (to restart a server where its clients expect it); default: any free port. */
  port?: number;
}

/** A real server on loopback, on its own database and its own bucket on the shared S3-API server. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const s3 = inject('s3');
  const databaseUrl = options.databaseUrl ?? (await createTestDatabase());
  const bucket = options.bucket ?? `t-${randomBytes(6).toString('hex')}`;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    UPC_LOG_LEVEL: 'error',
    UPC_DATA_DIR: '/nonexistent-data-dir',
    DATABASE_URL: databaseUrl,
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: s3.region,
    S3_BUCKET: bucket,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    UPC_ADMIN_PASSWORD: ADMIN_PASSWORD,
    ...options.env,
  });
  if (config.store.kind !== 's3') throw new Error('test servers use the S3 store');
  const { kind: _kind, ...storeOptions } = config.store;
  await ensureBucket(storeOptions);
  const server = await createServer(config, databaseUrl, new S3ObjectStore(storeOptions));
  await server.app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  const { port } = server.app.getHttpServer().address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const anonymous = () => new UpcClient({ baseUrl: url });
  const admin = async () => {
    const client = anonymous();
    await client.login('admin', ADMIN_PASSWORD);
    return client;
  };
  return {
    url,
    port,
    databaseUrl,
    bucket,
    server,
    anonymous,
    admin,
    async user(username, password = `${username}-password`) {
      const created = await (await admin()).createUser({ username, password });
      const client = anonymous();
      await client.login(username, password);
      return { client, id: created.id };
    },
    close: () => server.close(),
  };
}
