import { randomBytes, randomUUID } from 'node:crypto';
import { sha256Hex } from '@upc/image';
import type { CommitRequest, UpcClient } from '@upc/protocol';

/**
 * A random object of `size` plaintext bytes: its id, and its stored form (format byte 0, raw), which
 * is what the API uploads and serves.
 */
export const randomObject = (size = 64): { plain: Buffer; bytes: Buffer; hash: string } => {
  const plain = randomBytes(size);
  return { plain, bytes: Buffer.concat([Buffer.of(0), plain]), hash: sha256Hex(plain) };
};

/** A registered device and a workspace of the client's user, with the device holding the lease. */
export async function workspaceWithLease(client: UpcClient, name = 'main') {
  const device = await client.registerDevice({
    machineId: randomUUID(),
    name: `pc-${name}`,
    os: 'linux',
    agentVersion: 'test',
  });
  const workspace = await client.createWorkspace({ name });
  const lease = await client.acquireLease(workspace.id, device.id);
  return { device, workspace, lease };
}

/** Uploads a fresh object to stand in for a root tree and returns its hash. */
export async function storedTree(client: UpcClient, workspaceId: string): Promise<string> {
  const tree = randomObject(100);
  await client.uploadObject(workspaceId, tree.hash, tree.bytes);
  return tree.hash;
}

type LeasedWorkspace = Awaited<ReturnType<typeof workspaceWithLease>>;

/** Commits a freshly uploaded tree onto `parentId` with the setup's device and lease. */
export async function commitTree(
  client: UpcClient,
  setup: LeasedWorkspace,
  parentId: string | null,
  extra: Partial<CommitRequest> = {},
) {
  return client.commit(setup.workspace.id, {
    kind: 'sync',
    deviceId: setup.device.id,
    fencingToken: setup.lease.fencingToken,
    parentId,
    rootTree: await storedTree(client, setup.workspace.id),
    ...extra,
  });
}
