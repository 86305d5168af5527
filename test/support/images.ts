import { encodeObject, type Entry, hashTree, type Owner } from '@upc/image';
import type { UpcClient, Version } from '@upc/protocol';
import { workspaceWithLease } from './fixtures.js';

/** A node of an image a test crafts: a file, a folder or a link, with any name and target. */
export type ImageNode =
  | {
      file: string | Buffer;
      mode?: number;
      owner?: Owner;
      /** What the entry claims, if not the truth. */ size?: number;
    }
  | { dir: ImageSpec; mode?: number; owner?: Owner }
  | { link: string };
export type ImageSpec = Record<string, ImageNode>;

const MTIME = 1_700_000_000_000_000;

/**
 * Builds the image `spec` with libs/image's primitives and commits it to the user's workspace
 * `name` as any client of the API could (objects first, then the version), then lets the lease go
 * so that a PC can log in to it. How a test makes a hostile image.
 */
export async function publishImage(client: UpcClient, spec: ImageSpec, name = 'default'): Promise<Version> {
  const setup = await workspaceWithLease(client, name);
  const objects = new Map<string, Buffer>();
  const store = async (plain: Buffer, hash?: string): Promise<string> => {
    const encoded = await encodeObject(plain, hash);
    objects.set(encoded.hash, Buffer.from(encoded.bytes));
    return encoded.hash;
  };
  const build = async (folder: ImageSpec): Promise<string> => {
    const entries: Entry[] = [];
    for (const [entryName, node] of Object.entries(folder).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const base = { name: entryName, mtime: MTIME, owner: 'root' as Owner, group: 'root' as Owner };
      if ('link' in node) {
        entries.push({ ...base, mode: 0o777, type: 'symlink', target: node.link });
      } else if ('dir' in node) {
        const tree = await build(node.dir);
        entries.push({ ...base, owner: node.owner ?? 'root', mode: node.mode ?? 0o755, type: 'dir', tree });
      } else {
        const bytes = Buffer.from(node.file);
        const chunks = bytes.length === 0 ? [] : [await store(bytes)];
        entries.push({
          ...base,
          owner: node.owner ?? 'root',
          mode: node.mode ?? 0o644,
          type: 'file',
          size: node.size ?? bytes.length,
          chunks,
        });
      }
    }
    const { hash, bytes } = hashTree({ entries });
    return store(Buffer.from(bytes), hash);
  };
  const root = await build(spec);
  for (const [hash, bytes] of objects) await client.uploadObject(setup.workspace.id, hash, bytes);
  const version = await client.commit(setup.workspace.id, {
    parentId: null,
    rootTree: root,
    kind: 'sync',
    deviceId: setup.device.id,
    fencingToken: setup.lease.fencingToken,
    objects: [...objects.keys()],
  });
  await client.releaseLease(setup.workspace.id, setup.device.id, setup.lease.fencingToken);
  return version;
}
