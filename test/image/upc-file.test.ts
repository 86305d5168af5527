import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DEFAULT_CHUNKER,
  exportUpc,
  LocalRepository,
  materialize,
  reachableObjects,
  snapshot,
  UpcFile,
  type UpcManifest,
} from '@upc/image';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build, listing, scratch } from '../support/trees.js';

let dir: string;
let repository: LocalRepository;
let manifest: UpcManifest;
beforeEach(async () => {
  dir = await scratch('upc-file-');
  await build(join(dir, 'src'), {
    'notes.txt': { file: Buffer.from('hello from a USB stick\n'.repeat(100)) },
    docs: { dir: { 'a.bin': { file: Buffer.alloc(700_000, 7) }, link: { link: 'a.bin' } } },
  });
  repository = await LocalRepository.open(join(dir, 'repo'));
  const { root } = await snapshot(join(dir, 'src'), repository);
  manifest = {
    v: 1,
    root,
    chunker: DEFAULT_CHUNKER,
    createdAt: new Date().toISOString(),
    source: { workspace: 'main' },
  };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the portable .upc file', () => {
  it('round-trips: export, import into another repository, restore the same files', async () => {
    const file = join(dir, 'main.upc');
    const exported = await exportUpc(repository, manifest, file);
    expect(exported.objects).toBe(4); // two trees, two chunks
    const upc = await UpcFile.open(file);
    expect(upc.manifest).toEqual(manifest);
    expect(await upc.verify()).toBe(exported.objects);
    const elsewhere = await LocalRepository.open(join(dir, 'elsewhere'));
    await upc.importInto(elsewhere);
    await upc.close();
    await materialize(elsewhere, manifest.root, join(dir, 'out'));
    expect(await listing(join(dir, 'out'))).toEqual(await listing(join(dir, 'src')));
  });

  it('runs straight from the file, with no repository', async () => {
    const file = join(dir, 'main.upc');
    await exportUpc(repository, manifest, file);
    const upc = await UpcFile.open(file);
    await materialize(upc, upc.manifest.root, join(dir, 'out'));
    await upc.close();
    expect(await listing(join(dir, 'out'))).toEqual(await listing(join(dir, 'src')));
  });

  it('saves changes back by appending a segment that a later open reads', async () => {
    const file = join(dir, 'main.upc');
    await exportUpc(repository, manifest, file);
    const sizeBefore = (await readFile(file)).length;
    await writeFile(join(dir, 'src', 'notes.txt'), 'edited on the road\n');
    const { root } = await snapshot(join(dir, 'src'), repository);
    const upc = await UpcFile.open(file, 'r+');
    const added = await upc.append(repository, { ...manifest, root });
    await upc.close();
    expect(added).toBe(2); // the new chunk and the new root tree; nothing of docs/
    const reopened = await UpcFile.open(file);
    expect(reopened.manifest.root).toBe(root);
    await reopened.verify();
    await reopened.close();
    expect((await readFile(file)).length).toBeGreaterThan(sizeBefore);
  });

  it('opens at the last complete version when a save was cut short, and saves over the remains', async () => {
    const file = join(dir, 'main.upc');
    await exportUpc(repository, manifest, file);
    await writeFile(join(dir, 'src', 'notes.txt'), 'second version\n');
    const second = await snapshot(join(dir, 'src'), repository);
    const upc = await UpcFile.open(file, 'r+');
    await upc.append(repository, { ...manifest, root: second.root });
    await upc.close();
    const { length } = await readFile(file);
    await truncate(file, length - 20); // the second save never finished
    const recovered = await UpcFile.open(file, 'r+');
    expect(recovered.recovered).toBe(true);
    expect(recovered.manifest.root).toBe(manifest.root);
    await recovered.verify();
    await recovered.append(repository, { ...manifest, root: second.root });
    await recovered.close();
    const saved = await UpcFile.open(file);
    expect(saved.recovered).toBe(false);
    expect(saved.manifest.root).toBe(second.root);
    await saved.verify();
    await saved.close();
  });

  it('refuses a segment chain that does not point backwards, even with a valid checksum', async () => {
    const file = join(dir, 'main.upc');
    await exportUpc(repository, manifest, file);
    const bytes = await readFile(file);
    const trailer = bytes.length - 64;
    bytes.writeBigUInt64BE(BigInt(bytes.length), trailer + 16); // "the previous segment ends here"
    const indexOffset = Number(bytes.readBigUInt64BE(trailer));
    createHash('sha256')
      .update(bytes.subarray(indexOffset, trailer))
      .update(bytes.subarray(trailer, trailer + 24))
      .digest()
      .copy(bytes, trailer + 24);
    await writeFile(file, bytes);
    await expect(UpcFile.open(file)).rejects.toThrow(
      /broken segment chain|holds no complete earlier version/,
    );
  });

  it('refuses a truncated file', async () => {
    const file = join(dir, 'main.upc');
    await exportUpc(repository, manifest, file);
    const { length } = await readFile(file);
    await truncate(file, length - 10);
    await expect(UpcFile.open(file)).rejects.toThrow(/truncated or damaged at its end/);
  });

  it('refuses a bit flip, naming the damaged object', async () => {
    await writeFile(join(dir, 'src', 'random.bin'), randomBytes(5000)); // stored raw: a flip stays a flip
    const { root } = await snapshot(join(dir, 'src'), repository);
    const file = join(dir, 'main.upc');
    await exportUpc(repository, { ...manifest, root }, file);
    const upc = await UpcFile.open(file);
    const victim = (await upcObjects(upc, file)).find((o) => o.length > 1000);
    await upc.close();
    if (!victim) throw new Error('fixture has no large object');
    const handle = await open(file, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, victim.offset + 500);
    byte[0] = (byte[0] ?? 0) ^ 0x10;
    await handle.write(byte, 0, 1, victim.offset + 500);
    await handle.close();
    const damaged = await UpcFile.open(file);
    await expect(damaged.verify()).rejects.toThrow(new RegExp(`object ${victim.hash}`));
    await damaged.close();
  });

  it('refuses a damaged index', async () => {
    const file = join(dir, 'main.upc');
    await exportUpc(repository, manifest, file);
    const bytes = await readFile(file);
    const trailerStart = bytes.length - 64;
    const indexOffset = Number(bytes.readBigUInt64BE(trailerStart));
    bytes[indexOffset + 3] = (bytes[indexOffset + 3] ?? 0) ^ 1;
    await writeFile(file, bytes);
    await expect(UpcFile.open(file)).rejects.toThrow(/damaged index or manifest/);
  });
});

/** The objects of the file's version, with where their stored bytes sit in the file. */
async function upcObjects(
  upc: UpcFile,
  file: string,
): Promise<{ hash: string; offset: number; length: number }[]> {
  const bytes = await readFile(file);
  const found = [];
  for await (const hash of reachableObjects(upc, upc.manifest.root)) {
    const stored = await upc.readStored(hash);
    found.push({ hash, offset: bytes.indexOf(stored), length: stored.length });
  }
  return found;
}
