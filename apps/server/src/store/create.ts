import type { StoreConfig } from '../config.js';
import { FsObjectStore } from './fs-object-store.js';
import type { ObjectStore } from './object-store.js';
import { ensureBucket, S3ObjectStore } from './s3-object-store.js';

/**
 * The configured backend; an S3 bucket that does not exist yet is created, a folder's permissions
 * are made private (FsObjectStore.restrictPermissions).
 */
export async function createObjectStore(config: StoreConfig): Promise<ObjectStore> {
  if (config.kind === 'fs') {
    const store = new FsObjectStore(config.root);
    await store.restrictPermissions();
    return store;
  }
  const { kind: _kind, ...options } = config;
  await ensureBucket(options);
  return new S3ObjectStore(options);
}
