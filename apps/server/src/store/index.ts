export {
  assertValidKey,
  assertValidPrefix,
  InvalidKeyError,
  MAX_KEY_LENGTH,
  MAX_SEGMENT_LENGTH,
  ObjectNotFoundError,
  type ByteRange,
  type ObjectBody,
  type ObjectSource,
  type ObjectStore,
} from './object-store.js';
export { FsObjectStore } from './fs-object-store.js';
export { ensureBucket, S3ObjectStore, type S3StoreOptions } from './s3-object-store.js';
