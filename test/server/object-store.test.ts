import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import {
  ensureBucket,
  FsObjectStore,
  InvalidKeyError,
  ObjectNotFoundError,
  S3ObjectStore,
  type ObjectStore,
} from '../../apps/server/src/store/index.js';

interface Backend {
  name: string;
  /** Starts whatever the backend needs; called once per backend. */
  start(): Promise<BackendHarness>;
}

interface BackendHarness {
  /** A fresh, empty store. */
  createStore(): Promise<ObjectStore>;
  /** A store whose ping must fail. */
  createUnusableStore(): Promise<ObjectStore>;
  stop(): Promise<void>;
}

const sha256Hex = (body: Uint8Array): string => createHash('sha256').update(body).digest('hex');
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text);
/** 0, 1, 2, … so every byte says where it came from. */
const counting = (length: number): Uint8Array => Uint8Array.from({ length }, (_, i) => i % 256);

async function put(store: ObjectStore, key: string, body: Uint8Array): Promise<boolean> {
  return store.putIfAbsent(key, body, sha256Hex(body));
}

async function collect(keys: AsyncIterable<string>): Promise<string[]> {
  const all: string[] = [];
  for await (const key of keys) all.push(key);
  return all.sort();
}

async function putAll(store: ObjectStore, keys: readonly string[]): Promise<void> {
  // Bounded so 1100 S3 requests don't open 1100 sockets at once.
  for (let offset = 0; offset < keys.length; offset += 50) {
    await Promise.all(keys.slice(offset, offset + 50).map((key) => put(store, key, bytesOf(key))));
  }
}

/** The behaviour every ObjectStore backend must share; harness is read lazily, once beforeAll has run. */
function objectStoreConformance(harness: () => BackendHarness): void {
  let store: ObjectStore;
  beforeAll(async () => {
    store = await harness().createStore();
  });

  it('returns the stored bytes and reports that this call wrote them', async () => {
    const body = counting(3000);
    expect(await put(store, 'blobs/aa/put-get', body)).toBe(true);
    expect(hex(await store.get('blobs/aa/put-get'))).toBe(hex(body));
  });

  it('stores a body streamed from a source, of a few MiB, and opens it again for every write', async () => {
    const body = counting(3 * 1024 * 1024 + 17);
    let opened = 0;
    const source = {
      size: body.length,
      stream: () => {
        opened++;
        return Readable.from(
          Array.from({ length: Math.ceil(body.length / 65_536) }, (_, i) =>
            Buffer.from(body.subarray(i * 65_536, (i + 1) * 65_536)),
          ),
        );
      },
    };
    expect(await store.putIfAbsent('blobs/aa/streamed', source, sha256Hex(body))).toBe(true);
    expect(opened).toBe(1);
    expect(sha256Hex(await store.get('blobs/aa/streamed'))).toBe(sha256Hex(body));
    expect(await store.putIfAbsent('blobs/aa/streamed', source, sha256Hex(body))).toBe(false);
    expect(await store.size('blobs/aa/streamed')).toBe(body.length);
  });

  it('stores an empty object', async () => {
    expect(await put(store, 'empty', new Uint8Array())).toBe(true);
    expect(await store.get('empty')).toHaveLength(0);
    expect(await store.size('empty')).toBe(0);
  });

  it('keeps the first bytes when the key is put again', async () => {
    const first = bytesOf('first');
    expect(await put(store, 'again', first)).toBe(true);
    expect(await put(store, 'again', bytesOf('second!'))).toBe(false);
    expect(hex(await store.get('again'))).toBe(hex(first));
    expect(await store.size('again')).toBe(first.length);
  });

  it('survives concurrent puts of the same key', async () => {
    const body = counting(500);
    const wrote = await Promise.all(Array.from({ length: 5 }, () => put(store, 'racy', body)));
    expect(wrote).toContain(true);
    expect(hex(await store.get('racy'))).toBe(hex(body));
  });

  describe('byte ranges', () => {
    const body = counting(100);
    beforeAll(async () => {
      await put(store, 'ranged', body);
    });

    it.each([
      { name: 'first byte', start: 0, end: 0, expected: [0] },
      { name: 'middle', start: 10, end: 14, expected: [10, 11, 12, 13, 14] },
      { name: 'last byte', start: 99, end: 99, expected: [99] },
      { name: 'end clamped', start: 97, end: 1000, expected: [97, 98, 99] },
      { name: 'starting past the end', start: 100, end: 200, expected: [] },
    ])('$name', async ({ start, end, expected }) => {
      expect(Array.from(await store.get('ranged', { start, end }))).toEqual(expected);
    });

    it('returns the whole object for the full range', async () => {
      expect(hex(await store.get('ranged', { start: 0, end: 99 }))).toBe(hex(body));
    });

    it('rejects malformed ranges', async () => {
      await expect(store.get('ranged', { start: 5, end: 4 })).rejects.toThrow(RangeError);
      await expect(store.get('ranged', { start: -1, end: 4 })).rejects.toThrow(RangeError);
    });
  });

  it('rejects a missing key with ObjectNotFoundError', async () => {
    const missing = store.get('no/such/key');
    await expect(missing).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(missing).rejects.toMatchObject({ key: 'no/such/key' });
    await expect(store.get('no/such/key', { start: 0, end: 10 })).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('reports sizes, undefined when absent', async () => {
    await put(store, 'sized', counting(1234));
    expect(await store.size('sized')).toBe(1234);
    expect(await store.size('unsized')).toBeUndefined();
  });

  it('finds the subset of keys that exist', async () => {
    await putAll(store, ['has/a', 'has/b', 'has/c']);
    const found = await store.hasMany(['has/a', 'has/missing', 'has/c', 'has', 'other/a']);
    expect([...found].sort()).toEqual(['has/a', 'has/c']);
    expect(await store.hasMany([])).toEqual(new Set());
  });

  it('deletes keys and ignores absent ones', async () => {
    await putAll(store, ['del/a', 'del/b', 'del/c']);
    await store.deleteMany(['del/a', 'del/absent', 'del/c', 'never/was']);
    expect([...(await store.hasMany(['del/a', 'del/b', 'del/c']))]).toEqual(['del/b']);
    await expect(store.get('del/a')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await store.deleteMany([]);
    expect(await store.size('del/b')).toBe(bytesOf('del/b').length);
  });

  it('lists a prefix across more than one page of keys', async () => {
    const many = Array.from({ length: 1100 }, (_, i) => `list/many/${String(i).padStart(4, '0')}`);
    await putAll(store, [...many, 'list/manyx', 'list/other/1', 'lister']);

    expect(await collect(store.listPrefix('list/many/'))).toEqual(many);
    expect(await collect(store.listPrefix('list/many/10'))).toEqual(many.slice(1000));
    expect(await collect(store.listPrefix('list/many'))).toEqual([...many, 'list/manyx']);
    expect(await collect(store.listPrefix('list/o'))).toEqual(['list/other/1']);
    expect(await collect(store.listPrefix('list/absent/'))).toEqual([]);
    const everything = await collect(store.listPrefix(''));
    expect(everything).toHaveLength(new Set(everything).size);
    expect(everything).toEqual(expect.arrayContaining([...many, 'list/manyx', 'list/other/1', 'lister']));
  });

  describe('invalid keys', () => {
    const invalid = [
      '../x',
      '/abs',
      'a//b',
      'a/./b',
      '',
      'a/',
      'a/..',
      'sp ace',
      'a\\b',
      'x'.repeat(256),
      Array(129).fill('abc').join('/'),
    ];

    it.each(invalid)('rejects %j everywhere', async (key) => {
      await expect(store.putIfAbsent(key, bytesOf('x'), sha256Hex(bytesOf('x')))).rejects.toBeInstanceOf(
        InvalidKeyError,
      );
      await expect(store.get(key)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.size(key)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.hasMany(['ok', key])).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.deleteMany(['ok', key])).rejects.toBeInstanceOf(InvalidKeyError);
    });

    it.each(['../', '/abs', 'a//', 'a/./'])('rejects the prefix %j', async (prefix) => {
      await expect(collect(store.listPrefix(prefix))).rejects.toBeInstanceOf(InvalidKeyError);
    });

    it('accepts the longest keys', async () => {
      // s3rver appends '._S3rver_object' to file names, so its segments cannot reach the 255 allowed.
      const longest = `${'s'.repeat(200)}/${'t'.repeat(200)}/${'u'.repeat(110)}`;
      expect(longest).toHaveLength(512);
      expect(await put(store, longest, bytesOf('long'))).toBe(true);
      expect(await store.size(longest)).toBe(4);
    });
  });

  it('pings a working store and fails on an unusable one', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
    const unusable = await harness().createUnusableStore();
    await expect(unusable.ping()).rejects.toThrow();
  });
}

const fsBackend: Backend = {
  name: 'FsObjectStore',
  async start() {
    const dir = await mkdtemp(path.join(tmpdir(), 'upc-fs-store-'));
    let count = 0;
    return {
      createStore: () => Promise.resolve(new FsObjectStore(path.join(dir, `store-${++count}`, 'root'))),
      async createUnusableStore() {
        const file = path.join(dir, `file-${++count}`);
        await writeFile(file, 'not a directory');
        return new FsObjectStore(path.join(file, 'root'));
      },
      stop: () => rm(dir, { recursive: true, force: true }),
    };
  },
};

// The S3 backend runs against the suite's shared S3-API server (s3rver, or the one named by
// UPC_TEST_S3_ENDPOINT), each store in a bucket of its own.
const s3Backend: Backend = {
  name: 'S3ObjectStore',
  start() {
    const server = inject('s3');
    const run = randomBytes(4).toString('hex');
    const stores: S3ObjectStore[] = [];
    const open = (bucket: string): S3ObjectStore => {
      const store = new S3ObjectStore({ ...server, bucket, forcePathStyle: true });
      stores.push(store);
      return store;
    };
    let count = 0;
    return Promise.resolve({
      async createStore() {
        const options = { ...server, bucket: `store-${run}-${++count}`, forcePathStyle: true };
        // Servers starting together race to create the bucket: every one of them must succeed.
        await Promise.all([ensureBucket(options), ensureBucket(options), ensureBucket(options)]);
        await ensureBucket(options); // idempotent
        return open(options.bucket);
      },
      createUnusableStore: () => Promise.resolve(open(`no-such-bucket-${run}`)),
      stop() {
        for (const store of stores) store.destroy();
        return Promise.resolve();
      },
    });
  },
};

describe.each([fsBackend, s3Backend])('$name conformance', (backend) => {
  let harness: BackendHarness | undefined;
  beforeAll(async () => {
    harness = await backend.start();
  });
  afterAll(async () => {
    await harness?.stop();
  });
  const started = (): BackendHarness => {
    if (!harness) throw new Error(`${backend.name} did not start`);
    return harness;
  };

  objectStoreConformance(started);
});

/** Every file under dir, relative and '/'-separated. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

describe('FsObjectStore on disk', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'upc-fs-disk-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates its root on first write, and reads before that see nothing', async () => {
    const root = path.join(dir, 'lazy', 'nested', 'root');
    const store = new FsObjectStore(root);
    await expect(store.get('a')).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(await store.size('a')).toBeUndefined();
    expect(await collect(store.listPrefix(''))).toEqual([]);
    await expect(readdir(root)).rejects.toMatchObject({ code: 'ENOENT' });

    expect(await put(store, 'a', bytesOf('a'))).toBe(true);
    expect(await filesUnder(root)).toEqual(['a']);
  });

  it('leaves only object files, all inside the root', async () => {
    const parent = path.join(dir, 'contained');
    const root = path.join(parent, 'root');
    const store = new FsObjectStore(root);
    const keys = ['blobs/00/x', 'blobs/00/y', 'blobs/ff/z', 'top', '..dots', 'a.b-c_D'];
    await putAll(store, keys);
    await Promise.all(Array.from({ length: 4 }, () => put(store, 'blobs/00/x', bytesOf('blobs/00/x'))));
    for (const key of ['../escape', '../../escape', '/tmp/escape', 'a/../../escape']) {
      await expect(put(store, key, bytesOf('x'))).rejects.toBeInstanceOf(InvalidKeyError);
    }

    expect(await readdir(parent)).toEqual(['root']);
    expect(await filesUnder(root)).toEqual([...keys].sort());
  });

  it('does not list or find leftover temp files', async () => {
    const root = path.join(dir, 'leftovers');
    const store = new FsObjectStore(root);
    await putAll(store, ['d/real', 'top']);
    // What a crash between write and rename leaves behind.
    await writeFile(path.join(root, 'top~0a1b'), 'partial');
    await mkdir(path.join(root, 'd~tmp'));
    await writeFile(path.join(root, 'd~tmp', 'inner'), 'partial');
    await writeFile(path.join(root, 'd', 'real~2c3d'), 'partial');

    expect(await collect(store.listPrefix(''))).toEqual(['d/real', 'top']);
    expect(await collect(store.listPrefix('d'))).toEqual(['d/real']);
    expect(hex(await store.get('top'))).toBe(hex(bytesOf('top')));
  });

  it('stores a key whose segments are as long as a file name can be', async () => {
    const store = new FsObjectStore(path.join(dir, 'long'));
    const longest = `${'s'.repeat(255)}/${'t'.repeat(255)}`;
    expect(await put(store, longest, bytesOf('long'))).toBe(true);
    expect(await collect(store.listPrefix('s'))).toEqual([longest]);
  });

  it('treats a directory of other keys as absent', async () => {
    const store = new FsObjectStore(path.join(dir, 'dirs'));
    await put(store, 'parent/child', bytesOf('child'));
    expect(await store.size('parent')).toBeUndefined();
    expect(await store.hasMany(['parent', 'parent/child'])).toEqual(new Set(['parent/child']));
    await expect(store.get('parent')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await store.deleteMany(['parent']);
    expect(await store.size('parent/child')).toBe(5);
  });
});
