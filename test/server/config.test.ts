import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../apps/server/src/config.js';

const MiB = 1024 * 1024;

describe('configuration', () => {
  it('runs on embedded defaults with nothing set', () => {
    const config = loadConfig({});
    expect(config.port).toBe(8080);
    expect(config.databaseUrl).toBeUndefined();
    expect(config.store).toEqual({ kind: 'fs', root: `${process.cwd()}/data/objects` });
    expect(config.dataDir).toBe(`${process.cwd()}/data`);
    expect(config.maxObjectBytes).toBe(64 * MiB + 1024);
    expect(config.tls).toBeUndefined();
  });

  it('switches to real services with DATABASE_URL and S3_*', () => {
    const config = loadConfig({
      PORT: '9000',
      UPC_DATA_DIR: '/srv/upc',
      DATABASE_URL: 'postgresql://u:p@db:5432/upc',
      S3_ENDPOINT: 'http://minio:9000',
      S3_BUCKET: 'upc',
      S3_ACCESS_KEY_ID: 'key',
      S3_SECRET_ACCESS_KEY: 'secret',
      S3_FORCE_PATH_STYLE: 'true',
    });
    expect(config.port).toBe(9000);
    expect(config.dataDir).toBe('/srv/upc');
    expect(config.store).toEqual({
      kind: 's3',
      endpoint: 'http://minio:9000',
      region: 'us-east-1',
      bucket: 'upc',
      accessKeyId: 'key',
      secretAccessKey: 'secret',
      forcePathStyle: true,
    });
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ['a port that is not a number', { PORT: 'eighty' }, /PORT/],
    ['a port out of range', { PORT: '70000' }, /PORT/],
    ['a database URL of another kind', { DATABASE_URL: 'mysql://x' }, /DATABASE_URL: must be a postgres/],
    [
      'a boolean that is not one',
      { S3_FORCE_PATH_STYLE: 'maybe', S3_BUCKET: 'upc' },
      /S3_FORCE_PATH_STYLE: must be true or false/,
    ],
    ['an endpoint without a bucket', { S3_ENDPOINT: 'http://minio:9000' }, /S3_BUCKET: is required/],
    ['half a key pair', { S3_BUCKET: 'upc', S3_ACCESS_KEY_ID: 'key' }, /S3_SECRET_ACCESS_KEY/],
    ['a short admin password', { UPC_ADMIN_PASSWORD: 'short' }, /UPC_ADMIN_PASSWORD: must be at least 8/],
    [
      'a TLS file that does not exist',
      { TLS_CERT_FILE: '/nope.pem', TLS_KEY_FILE: '/nope.key' },
      /TLS_CERT_FILE: file does not exist/,
    ],
    ['a certificate without its key', { TLS_CERT_FILE: '/etc/hostname' }, /TLS_KEY_FILE/],
  ];
  it.each(bad)('stops on %s, naming the variable', (_what, env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
