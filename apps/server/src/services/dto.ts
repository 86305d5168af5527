import type { Device, Lease, LiveSession, User, Version, Workspace } from '@upc/protocol';
import type { DeviceRow } from '../repositories/device.repository.js';
import type { LeaseRow } from '../repositories/lease.repository.js';
import type { LiveSessionRow } from '../repositories/session.repository.js';
import type { UserRow } from '../repositories/user.repository.js';
import type { VersionRow } from '../repositories/version.repository.js';
import type { WorkspaceRow } from '../repositories/workspace.repository.js';

/** Rows to the protocol's shapes: the only place that decides what leaves the server. */
export const toUser = (row: UserRow): User => ({
  id: row.id,
  username: row.username,
  role: row.role,
  disabled: row.disabled,
  createdAt: row.createdAt.toISOString(),
});

export const toDevice = (row: DeviceRow, ownerName: string): Device => ({
  id: row.id,
  ownerId: row.ownerId,
  ownerName,
  machineId: row.machineId,
  name: row.name,
  os: row.os,
  agentVersion: row.agentVersion,
  createdAt: row.createdAt.toISOString(),
  lastSeenAt: row.lastSeenAt.toISOString(),
});

export const toWorkspace = (row: WorkspaceRow, ownerName: string, storedBytes: number): Workspace => ({
  id: row.id,
  ownerId: row.ownerId,
  ownerName,
  name: row.name,
  policy: (row.policy as Record<string, unknown> | null) ?? null,
  headVersionId: row.headVersionId,
  storedBytes,
  quotaBytes: row.quotaBytes === null ? null : Number(row.quotaBytes),
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

export const toVersion = (row: VersionRow): Version => ({
  id: row.id,
  workspaceId: row.workspaceId,
  parentId: row.parentId,
  rootTree: row.rootTree,
  kind: row.kind,
  deviceId: row.deviceId,
  authorId: row.authorId,
  stats: row.stats as Record<string, number>,
  chunker: (row.chunker as Version['chunker'] | null) ?? null,
  createdAt: row.createdAt.toISOString(),
});

export const toLease = (row: LeaseRow): Lease => ({
  workspaceId: row.workspaceId,
  deviceId: row.deviceId,
  userId: row.userId,
  fencingToken: Number(row.fencingToken),
  acquiredAt: row.acquiredAt.toISOString(),
  renewedAt: row.renewedAt.toISOString(),
  expiresAt: row.expiresAt.toISOString(),
});

export const toLiveSession = (row: LiveSessionRow): LiveSession => ({
  workspace: { id: row.workspaceId, name: row.workspaceName },
  user: { id: row.userId, username: row.username },
  device: { id: row.deviceId, name: row.deviceName },
  since: row.since.toISOString(),
  lastSync: row.lastSync?.toISOString() ?? null,
  pendingBytes: row.pendingBytes === null ? null : Number(row.pendingBytes),
  state: row.state,
  lastSeenAt: row.lastSeenAt.toISOString(),
});
