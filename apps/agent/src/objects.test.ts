import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeObject, type Entry, hashTree, LocalRepository } from '@upc/image';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchVersion } from './objects.js';

const MiB = 1024 * 1024;
const base = { mode: 0o644, mtime: 1_700_000_000_000_000, owner: 'user', group: 'user' } as const;

let dir: string;
let repo: LocalRepository;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'upc-fetch-'));
  repo = await LocalRepository.open(join(dir, 'repo'));
});
afterEach(async () => {
  repo.close();
  await rm(dir, { recursive: true, force: true });
});

/** A server's objects in memory: what was asked for is recorded; what it lacks is left out. */
function server(objects: Map<string, Buffer>) {
  const asked: string[][] = [];
  const download = (hashes: string[]) => {
    asked.push(hashes);
    return Promise.resolve(
      new Map(
        hashes.flatMap((hash) => {
          const bytes = objects.get(hash);
          return bytes ? [[hash, bytes] as const] : [];
        }),
      ),
    );
  };
  return { asked, download };
}

/** A version of `files` files of 64 MiB of zeros (one 2 KiB chunk), beside `padding` random bytes. */
async function bomb(files: number, padding = 0) {
  const objects = new Map<string, Buffer>();
  const zeros = await encodeObject(Buffer.alloc(64 * MiB));
  objects.set(zeros.hash, zeros.bytes);
  const entries: Entry[] = Array.from({ length: files }, (_, i) => ({
    ...base,
    name: `f${String(i).padStart(3, '0')}`,
    type: 'file',
    size: 64 * MiB,
    chunks: [zeros.hash],
  }));
  if (padding > 0) {
    const noise = await encodeObject(randomBytes(padding));
    objects.set(noise.hash, noise.bytes);
    entries.push({ ...base, name: 'padding', type: 'file', size: padding, chunks: [noise.hash] });
  }
  const tree = hashTree({ entries });
  objects.set(tree.hash, (await encodeObject(tree.bytes, tree.hash)).bytes);
  return { root: tree.hash, chunk: zeros.hash, objects };
}

describe('fetchVersion', () => {
  it('refuses a version whose files come to over a thousand times what it stores', async () => {
    const image = await bomb(16);
    const { download } = server(image.objects);
    await expect(fetchVersion(repo, image.root, download)).rejects.toThrow(/crafted image/);
    const allowed = await fetchVersion(repo, image.root, download, { refuseAmplification: false });
    expect(allowed.fileBytes).toBe(1024 * MiB);
  });

  it('takes one that stores enough for what it expands to, and says what it stores', async () => {
    const image = await bomb(16, 2 * MiB);
    const { download } = server(image.objects);
    const fetched = await fetchVersion(repo, image.root, download);
    expect(fetched.fileBytes).toBe(1024 * MiB + 2 * MiB);
    expect(fetched.storedBytes).toBe([...image.objects.values()].reduce((sum, b) => sum + b.length, 0));
  });

  it('asks whether the files fit once it has the trees, before fetching a chunk', async () => {
    const image = await bomb(4);
    const { asked, download } = server(image.objects);
    const seen: number[] = [];
    await expect(
      fetchVersion(repo, image.root, download, {
        checkFileBytes: (bytes) => {
          seen.push(bytes);
          throw new Error('no room');
        },
      }),
    ).rejects.toThrow('no room');
    expect(seen).toEqual([256 * MiB]);
    expect(asked).toEqual([[image.root]]);
    expect(repo.has(image.chunk)).toBe(false);
  });
});
