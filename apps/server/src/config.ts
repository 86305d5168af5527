import { existsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const MiB = 1024 * 1024;
/** apps/console/dist, found the same way from src/ (tests) and dist/ (npm start). */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../console/dist', import.meta.url));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const file = z.string().refine((path) => existsSync(path), 'file does not exist');

/** Every environment variable the server reads, in one schema. */
const EnvSchema = z
  .object({
    PORT: int(0, 65535).default(8080),
    HOST: z.string().min(1).default('0.0.0.0'),
    UPC_DATA_DIR: z.string().min(1).default('./data'),
    UPC_LOG_LEVEL: z.enum(['error', 'warn', 'log', 'debug']).default('log'),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    S3_ENDPOINT: z.url().optional(),
    S3_REGION: z.string().min(1).default('us-east-1'),
    S3_BUCKET: z.string().min(3).max(63).optional(),
    S3_ACCESS_KEY_ID: z.string().min(1).optional(),
    S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
    S3_FORCE_PATH_STYLE: bool.default(false),
    UPC_ADMIN_PASSWORD: z.string().min(8, 'must be at least 8 characters').optional(),
    TLS_CERT_FILE: file.optional(),
    TLS_KEY_FILE: file.optional(),
    UPC_TRUST_PROXY: bool.default(false),
    UPC_TOKEN_TTL_HOURS: int(1, 24 * 365).default(24 * 7),
    UPC_LEASE_TTL_SECONDS: int(5, 3600).default(30),
    // The image format's largest object (64 MiB of plaintext) plus its encoding overhead.
    UPC_MAX_OBJECT_BYTES: int(1024, 1024 * MiB).default(64 * MiB + 1024),
    UPC_MAX_PACK_BYTES: int(1024, 1024 * MiB).default(64 * MiB),
    UPC_MAX_JSON_BYTES: int(1024, 256 * MiB).default(4 * MiB),
    // Where POST objects/fetch stops adding records to its answer (it always sends at least one).
    UPC_MAX_FETCH_BYTES: int(1024, 1024 * MiB).default(32 * MiB),
    // The sign-in limit (AuthService): tries of one username from one address, and from one address
    // over every username, before each further try waits, from the backoff doubling up to the window.
    UPC_LOGIN_WINDOW_SECONDS: int(1, 86_400).default(900),
    UPC_LOGIN_MAX_FAILURES_PER_USER: int(1, 1_000_000).default(10),
    UPC_LOGIN_MAX_FAILURES_PER_ADDRESS: int(1, 1_000_000).default(50),
    UPC_LOGIN_BACKOFF_SECONDS: int(1, 86_400).default(1),
    UPC_CONSOLE_DIR: z.string().min(1).optional(),
    // Where uploads wait, on disk, while they are checked (a private folder is made inside):
    // beside the objects with the filesystem store, the system's temporary folder with S3.
    UPC_UPLOAD_DIR: z.string().min(1).optional(),
    // Threads for decoding trees and checking uploads, beside the one that answers requests.
    UPC_WORKER_THREADS: int(1, 64).optional(),
  })
  .superRefine((env, ctx) => {
    if ((env.TLS_CERT_FILE === undefined) !== (env.TLS_KEY_FILE === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['TLS_KEY_FILE'],
        message: 'TLS_CERT_FILE and TLS_KEY_FILE go together',
      });
    }
    if ((env.S3_ACCESS_KEY_ID === undefined) !== (env.S3_SECRET_ACCESS_KEY === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['S3_SECRET_ACCESS_KEY'],
        message: 'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together',
      });
    }
    if (env.S3_BUCKET === undefined && env.S3_ENDPOINT !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: 'is required when S3_ENDPOINT is set' });
    }
  });

export type StoreConfig =
  | { kind: 'fs'; root: string }
  | {
      kind: 's3';
      endpoint?: string;
      region: string;
      bucket: string;
      accessKeyId?: string;
      secretAccessKey?: string;
      forcePathStyle: boolean;
    };

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  logLevel: 'error' | 'warn' | 'log' | 'debug';
  /** Undefined: run the embedded PostgreSQL under dataDir. */
  databaseUrl: string | undefined;
  store: StoreConfig;
  adminPassword: string | undefined;
  tls: { certFile: string; keyFile: string } | undefined;
  trustProxy: boolean;
  tokenTtlMs: number;
  leaseTtlSeconds: number;
  maxObjectBytes: number;
  maxPackBytes: number;
  maxJsonBytes: number;
  /** The body size past which POST objects/fetch adds no more records (FetchObjectsRequest). */
  maxFetchBytes: number;
  /**
   * The sign-in limit: `maxFailuresPerUser` tries of one username from one address and
   * `maxFailuresPerAddress` from one address over every username go through at once; each further
   * try waits `backoffSeconds`, doubling, up to `windowSeconds`, after which a quiet count is forgotten.
   */
  login: {
    windowSeconds: number;
    maxFailuresPerUser: number;
    maxFailuresPerAddress: number;
    backoffSeconds: number;
  };
  /** The built console (index.html and assets/) served at `/`; it may not exist (then `/` says so). */
  consoleDir: string;
  /** Where the server makes its private folder for uploads being checked (UploadSpool). */
  uploadDir: string;
  /** Worker threads for big trees and uploads (WorkerPool). */
  workerThreads: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the server's configuration from `env` (process.env by default), the only place that does. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (issue) => `  ${issue.path.join('.') || '(environment)'}: ${issue.message}`,
    );
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const dataDir = resolve(e.UPC_DATA_DIR);
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir,
    logLevel: e.UPC_LOG_LEVEL,
    databaseUrl: e.DATABASE_URL,
    store:
      e.S3_BUCKET === undefined
        ? { kind: 'fs', root: resolve(dataDir, 'objects') }
        : {
            kind: 's3',
            endpoint: e.S3_ENDPOINT,
            region: e.S3_REGION,
            bucket: e.S3_BUCKET,
            accessKeyId: e.S3_ACCESS_KEY_ID,
            secretAccessKey: e.S3_SECRET_ACCESS_KEY,
            forcePathStyle: e.S3_FORCE_PATH_STYLE,
          },
    adminPassword: e.UPC_ADMIN_PASSWORD,
    tls:
      e.TLS_CERT_FILE && e.TLS_KEY_FILE ? { certFile: e.TLS_CERT_FILE, keyFile: e.TLS_KEY_FILE } : undefined,
    trustProxy: e.UPC_TRUST_PROXY,
    tokenTtlMs: e.UPC_TOKEN_TTL_HOURS * 3_600_000,
    leaseTtlSeconds: e.UPC_LEASE_TTL_SECONDS,
    maxObjectBytes: e.UPC_MAX_OBJECT_BYTES,
    maxPackBytes: e.UPC_MAX_PACK_BYTES,
    maxJsonBytes: e.UPC_MAX_JSON_BYTES,
    maxFetchBytes: e.UPC_MAX_FETCH_BYTES,
    login: {
      windowSeconds: e.UPC_LOGIN_WINDOW_SECONDS,
      maxFailuresPerUser: e.UPC_LOGIN_MAX_FAILURES_PER_USER,
      maxFailuresPerAddress: e.UPC_LOGIN_MAX_FAILURES_PER_ADDRESS,
      backoffSeconds: e.UPC_LOGIN_BACKOFF_SECONDS,
    },
    consoleDir: resolve(e.UPC_CONSOLE_DIR ?? DEFAULT_CONSOLE_DIR),
    uploadDir: resolve(e.UPC_UPLOAD_DIR ?? (e.S3_BUCKET === undefined ? join(dataDir, 'uploads') : tmpdir())),
    workerThreads: e.UPC_WORKER_THREADS ?? Math.min(4, Math.max(1, availableParallelism() - 1)),
  };
}
