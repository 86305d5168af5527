/** Nest injection tokens for the things that are not classes. */
export const DATABASE = Symbol('Database');
export const OBJECT_STORE = Symbol('ObjectStore');
export const CONFIG = Symbol('Config');
export const UPLOAD_SPOOL = Symbol('UploadSpool');
export const WORKERS = Symbol('WorkerPool');
