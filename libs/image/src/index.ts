export * from './hash.js';
export * from './pack.js';
