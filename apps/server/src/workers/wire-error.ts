import { ObjectFormatError, PackFormatError, TreeFormatError } from '@upc/image';
import { TreeNotLoadedError } from './tree-work.js';

/** An error as it crosses between threads: its class by name, and the fields callers read. */
export interface WireError {
  name: string;
  message: string;
  stack?: string | undefined;
  kind?: string | undefined;
  hash?: string | undefined;
}

const CLASSES: Record<string, { prototype: Error }> = {
  ObjectFormatError,
  PackFormatError,
  TreeFormatError,
  TreeNotLoadedError,
};

export function toWire(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const { kind, hash } = error as { kind?: unknown; hash?: unknown };
  return {
    name: error.name,
    message: error.message,
    stack: error.stack,
    kind: typeof kind === 'string' ? kind : undefined,
    hash: typeof hash === 'string' ? hash : undefined,
  };
}

/** The error again, of its own class (libs/image's format errors keep their kind and hash). */
export function fromWire(wire: WireError): Error {
  const error = Object.create((CLASSES[wire.name] ?? Error).prototype) as Error;
  return Object.assign(error, {
    name: wire.name,
    message: wire.message,
    stack: wire.stack,
    ...(wire.kind === undefined ? {} : { kind: wire.kind }),
    ...(wire.hash === undefined ? {} : { hash: wire.hash }),
  });
}

/**
 * Bytes that own their whole buffer, so it can be moved to the other thread instead of copied. A
 * view of a shared buffer (Node's pool of small Buffers) is copied first: moving that would take
 * the pool away from everything else in the thread.
 */
export function transferable(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return whole && bytes.buffer instanceof ArrayBuffer
    ? (bytes as Uint8Array<ArrayBuffer>)
    : new Uint8Array(bytes);
}
