export * from './errors.js';
export * from './schemas.js';
export * from './client.js';
export * from './records.js';
