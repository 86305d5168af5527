import { randomBytes, randomUUID } from 'node:crypto';
import { sha256Hex } from '@upc/image';
import type { CommitRequest, UpcClient } from '@upc/protocol';

export const randomObject = (size = 64): { bytes: Buffer; hash: string } => {
  const bytes = randomBytes(size);
  return { bytes, hash: sha256Hex(bytes) };
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
