import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashTree, LocalRepository, type Entry, type Tree } from '@upc/image';

/** A folder to build on disk: files (contents, mode), folders and relative symlinks. */
export type Spec = { [name: string]: SpecNode };
export type SpecNode =
  { file: Uint8Array; mode?: number; mtime?: number } | { dir: Spec; mode?: number } | { link: string };

export const scratch = (prefix = 'upc-image-') => mkdtemp(join(tmpdir(), prefix));

export async function build(root: string, spec: Spec): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const [name, node] of Object.entries(spec)) {
    const path = join(root, name);
    if ('file' in node) {
      await writeFile(path, node.file);
      await chmod(path, node.mode ?? 0o644);
      if (node.mtime !== undefined) await utimes(path, node.mtime, node.mtime);
    } else if ('dir' in node) {
      await build(path, node.dir);
      await chmod(path, node.mode ?? 0o755);
    } else {
      await symlink(node.link, path);
    }
  }
}

/** Everything a restore must reproduce, as a comparable listing: kind, mode, mtime (µs), size, bytes, target. */
export async function listing(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, prefix: string) => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const stats = await lstat(path, { bigint: true });
      const key = prefix + name;
      const common = `mode=${(stats.mode & 0o7777n).toString(8)} mtime=${stats.mtimeNs / 1000n}`;
      if (stats.isSymbolicLink()) out[key] = `link -> ${await readlink(path)}`;
      else if (stats.isDirectory()) {
        out[key] = `dir ${common}`;
        await walk(path, `${key}/`);
      } else
        out[key] =
          `file ${common} size=${stats.size} sha=${(await readFile(path)).toString('base64').slice(0, 40)}`;
    }
  };
  await walk(root, '');
  return out;
}

/** Stores a tree object whose bytes we choose: how a test makes a hostile image. */
export async function rawTree(repository: LocalRepository, entries: unknown[]): Promise<string> {
  return repository.write(Buffer.from(JSON.stringify({ v: 1, entries })));
}

/** Stores a well-formed tree of the given entries. */
export async function tree(repository: LocalRepository, entries: Entry[]): Promise<string> {
  const { hash, bytes } = hashTree({ entries } satisfies Tree);
  return repository.write(bytes, hash);
}

export const fileEntry = (name: string, chunks: string[], size: number): Entry => ({
  name,
  type: 'file',
  mode: 0o644,
  mtime: 1_700_000_000_000_000,
  owner: 'user',
  group: 'user',
  size,
  chunks,
});
