import { z } from 'zod';

/** Lower-case hex SHA-256: the id of every object, tree and pack. */
export const Hash = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits (SHA-256)');
export const Id = z.uuid();
export const Timestamp = z.iso.datetime();
export const Username = z
  .string()
  .regex(/^[a-z][a-z0-9._-]{1,31}$/, 'must be 2-32 characters: a-z first, then a-z, 0-9, ".", "_" or "-"');
export const Password = z.string().min(8, 'must be at least 8 characters').max(256);
export const Role = z.enum(['user', 'admin']);
export const VersionKind = z.enum(['sync', 'logout', 'checkpoint', 'recovery', 'conflict']);
export const FencingToken = z.number().int().nonnegative();

export const Health = z.object({
  status: z.enum(['ok', 'unavailable']),
  db: z.enum(['ok', 'down']),
  store: z.enum(['ok', 'down']),
});

export const User = z.object({
  id: Id,
  username: Username,
  role: Role,
  disabled: z.boolean(),
  createdAt: Timestamp,
});
export const LoginRequest = z.object({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(256),
});
export const LoginResponse = z.object({ token: z.string(), expiresAt: Timestamp, user: User });
export const CreateUserRequest = z.object({
  username: Username,
  password: Password,
  role: Role.default('user'),
});
export const UpdateUserRequest = z
  .object({ disabled: z.boolean().optional(), role: Role.optional() })
  .refine((v) => v.disabled !== undefined || v.role !== undefined, 'give disabled or role');
export const ResetPasswordRequest = z.object({ password: Password });

export const Device = z.object({
  id: Id,
  ownerId: Id,
  /** The owner's username, so that a list of PCs can name owners without a list of every user. */
  ownerName: z.string(),
  machineId: z.string(),
  name: z.string(),
  os: z.string(),
  agentVersion: z.string(),
  createdAt: Timestamp,
  lastSeenAt: Timestamp,
});
export const RegisterDeviceRequest = z.object({
  machineId: z.string().min(1).max(128),
  name: z.string().min(1).max(128),
  os: z.string().min(1).max(64),
  agentVersion: z.string().min(1).max(64),
});
/** The key a device's agent encrypts its local cache with: base64 of 32 random bytes. */
export const CacheKey = z.object({ key: z.string() });

/**
 * A workspace's policy override (libs/policy). The server checks it with the parser the agent uses,
 * against the default policy of its platform, and answers 400 invalid_policy naming every problem.
 */
export const PolicyDocument = z.record(z.string(), z.unknown());
export const WorkspaceName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/,
    'must be 1-64 characters: letters, digits, " ", ".", "_" or "-"',
  );
export const Workspace = z.object({
  id: Id,
  ownerId: Id,
  /** The owner's username, as Device's. */
  ownerName: z.string(),
  name: z.string(),
  policy: PolicyDocument.nullable(),
  headVersionId: Id.nullable(),
  storedBytes: z.number().int().nonnegative(),
  /** Null: no quota. */
  quotaBytes: z.number().int().nonnegative().nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export const CreateWorkspaceRequest = z.object({
  name: WorkspaceName,
  policy: PolicyDocument.nullable().default(null),
  /** Admins may create a workspace for another user. */
  ownerId: Id.optional(),
});
export const SetPolicyRequest = z.object({ policy: PolicyDocument.nullable() });
export const SetQuotaRequest = z.object({ quotaBytes: z.number().int().nonnegative().nullable() });

export const MAX_HASHES_PER_REQUEST = 10_000;
export const MissingObjectsRequest = z.object({ hashes: z.array(Hash).max(MAX_HASHES_PER_REQUEST) });
export const MissingObjectsResponse = z.object({ missing: z.array(Hash) });
/**
 * `POST /workspaces/:id/objects/fetch`: many objects in one answer, for restores that need thousands.
 *
 * The answer is `200 application/octet-stream`, a sequence of records (records.ts, parseObjectRecords):
 * `32 bytes raw SHA-256 id | 4 bytes big-endian length | that many bytes`, the bytes being the object's
 * stored form exactly as `GET objects/:hash` serves it. Records come in the order the hashes were
 * asked for; a hash asked for twice is answered once, where it first appears.
 *
 * - Objects the workspace does not have are left out; that is not an error.
 * - The answer is capped (the server's UPC_MAX_FETCH_BYTES, 32 MiB by default): the server stops adding
 *   records before the body would pass the cap, but always sends at least one record, however big, when
 *   the workspace has any of the objects asked for. So the answer covers a *prefix* of the request: the
 *   hashes up to the last record's id that got no record are not in the workspace; the hashes after it
 *   were not answered, and the client asks again for them. An empty body means the workspace has none
 *   of the objects asked for. `UpcClient.fetchObjects` does this loop.
 */
export const FetchObjectsRequest = z.object({
  hashes: z.array(Hash).min(1).max(MAX_HASHES_PER_REQUEST),
});
export const StoredObject = z.object({
  hash: Hash,
  size: z.number().int().nonnegative(),
  created: z.boolean(),
});
export const StoredPack = z.object({
  hash: Hash,
  size: z.number().int().nonnegative(),
  objects: z.number().int().nonnegative(),
  created: z.boolean(),
});

export const VersionStats = z.record(z.string(), z.number());
/** How the version's files were chunked (libs/image ChunkerParams); null for versions that did not say. */
export const ChunkerParams = z.object({
  algorithm: z.literal('fastcdc-gear32'),
  minSize: z.number().int().positive(),
  avgSize: z.number().int().positive(),
  maxSize: z.number().int().positive(),
});
export const Version = z.object({
  id: Id,
  workspaceId: Id,
  parentId: Id.nullable(),
  rootTree: Hash,
  kind: VersionKind,
  deviceId: Id.nullable(),
  authorId: Id.nullable(),
  stats: VersionStats,
  chunker: ChunkerParams.nullable(),
  createdAt: Timestamp,
});
export const CommitRequest = z.object({
  parentId: Id.nullable(),
  rootTree: Hash,
  kind: VersionKind,
  deviceId: Id,
  fencingToken: FencingToken,
  stats: VersionStats.default({}),
  chunker: ChunkerParams.nullable().default(null),
  /** Objects this version adds; each must be stored before the commit is accepted. */
  objects: z.array(Hash).max(100_000).default([]),
});

export const Lease = z.object({
  workspaceId: Id,
  deviceId: Id,
  userId: Id,
  fencingToken: FencingToken,
  acquiredAt: Timestamp,
  renewedAt: Timestamp,
  expiresAt: Timestamp,
});
export const LeaseHolder = z.object({
  deviceId: Id,
  deviceName: z.string(),
  userId: Id,
  username: z.string(),
  since: Timestamp,
  expiresAt: Timestamp,
});
export const AcquireLeaseRequest = z.object({
  deviceId: Id,
  ttlSeconds: z.number().int().min(5).max(3600).optional(),
});
export const RenewLeaseRequest = z.object({ deviceId: Id, fencingToken: FencingToken });

/**
 * `POST /auth/pc-login`: an agent's whole login in one request. The server signs in like
 * `/auth/login`, registers `device` like `POST /devices`, finds the user's workspace named
 * `workspace` (creating it like `POST /workspaces`), takes its lease (`takeOver`: even from another
 * device) and reads HEAD; the token exists only when every step succeeded.
 */
export const PcLoginRequest = LoginRequest.extend({
  device: RegisterDeviceRequest,
  workspace: WorkspaceName,
  takeOver: z.boolean().default(false),
  /** Also answer the device's cache key, as `POST /devices/:id/cache-key` gives it. */
  cacheKey: z.boolean().default(false),
  leaseTtlSeconds: AcquireLeaseRequest.shape.ttlSeconds,
});
export const PcLoginResponse = LoginResponse.extend({
  device: Device,
  workspace: Workspace,
  lease: Lease,
  /** The HEAD version; null for a workspace nothing was committed to yet. */
  head: Version.nullable(),
  /** Null unless the request asked for it. */
  cacheKey: CacheKey.shape.key.nullable(),
});

export const AuditEvent = z.object({
  id: z.string(),
  at: Timestamp,
  actorId: Id.nullable(),
  action: z.string(),
  targetType: z.string(),
  targetId: z.string().nullable(),
  workspaceId: Id.nullable(),
  address: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});
export const AuditQuery = z.object({
  actorId: Id.optional(),
  workspaceId: Id.optional(),
  action: z.string().max(64).optional(),
  since: Timestamp.optional(),
  until: Timestamp.optional(),
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
export const VersionListQuery = z.object({
  before: Timestamp.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
/**
 * Paging of a list that is otherwise answered whole: with `limit` (or `offset`), the answer is that
 * slice of the list, in its usual order, and its X-Total-Count header says how many match in all.
 */
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).optional(),
  offset: z.coerce.number().int().min(0).max(1_000_000).optional(),
});
/** Matches names containing the text, ignoring case. */
const Search = z.string().trim().max(64).optional();
export const UserListQuery = PageQuery.extend({ search: Search });
/** `search`: the workspace's name or its owner's username. */
export const WorkspaceListQuery = PageQuery.extend({ ownerId: Id.optional(), search: Search });
/** `search`: the PC's name, its OS or its owner's username. */
export const DeviceListQuery = PageQuery.extend({ ownerId: Id.optional(), search: Search });
/** The response header of a paged list: how many items match, on every page together. */
export const TOTAL_COUNT_HEADER = 'x-total-count';

/**
 * What a device's agent reports with its heartbeat (all optional: an older agent sends nothing):
 * the session's sync state and what it has not yet made durable.
 */
export const HeartbeatRequest = z.object({
  state: z.string().max(32).optional(),
  pendingChanges: z.number().int().nonnegative().optional(),
  pendingBytes: z.number().int().nonnegative().optional(),
});

/** A session running now: a workspace whose lease a device holds (the console's live list). */
export const LiveSession = z.object({
  workspace: z.object({ id: Id, name: z.string() }),
  user: z.object({ id: Id, username: z.string() }),
  device: z.object({ id: Id, name: z.string() }),
  /** When the device took the lease. */
  since: Timestamp,
  /** The newest version that device committed to the workspace, if any. */
  lastSync: Timestamp.nullable(),
  /** What the device's last heartbeat said it had not yet made durable (null: not reported). */
  pendingBytes: z.number().int().nonnegative().nullable(),
  state: z.string().nullable(),
  lastSeenAt: Timestamp,
});
/** The `sessions` event of `GET /events` (server-sent events): the whole list, on every change. */
export const SessionsEvent = z.object({ sessions: z.array(LiveSession) });

/** `GET /stats` (admins): totals and the two series the console charts. */
export const Stats = z.object({
  users: z.number().int().nonnegative(),
  workspaces: z.number().int().nonnegative(),
  /** Bytes the object store holds (stored, compressed). */
  storageBytes: z.number().int().nonnegative(),
  /** Versions committed since midnight UTC. */
  versionsToday: z.number().int().nonnegative(),
  /** Versions committed per hour, the last 24 hours, oldest first (24 entries). */
  activity: z.array(z.object({ hour: Timestamp, versions: z.number().int().nonnegative() })),
  /** Bytes stored at the end of each of the last 30 days (UTC), oldest first (30 entries). */
  storage: z.array(
    z.object({ day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/), bytes: z.number().int().nonnegative() }),
  ),
});

export type Health = z.infer<typeof Health>;
export type User = z.infer<typeof User>;
export type LoginRequest = z.infer<typeof LoginRequest>;
export type LoginResponse = z.infer<typeof LoginResponse>;
export type CreateUserRequest = z.input<typeof CreateUserRequest>;
export type UpdateUserRequest = z.infer<typeof UpdateUserRequest>;
export type Device = z.infer<typeof Device>;
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;
export type LiveSession = z.infer<typeof LiveSession>;
export type SessionsEvent = z.infer<typeof SessionsEvent>;
export type Stats = z.infer<typeof Stats>;
export type RegisterDeviceRequest = z.infer<typeof RegisterDeviceRequest>;
export type CacheKey = z.infer<typeof CacheKey>;
export type Workspace = z.infer<typeof Workspace>;
export type CreateWorkspaceRequest = z.input<typeof CreateWorkspaceRequest>;
export type StoredObject = z.infer<typeof StoredObject>;
export type StoredPack = z.infer<typeof StoredPack>;
export type Version = z.infer<typeof Version>;
export type CommitRequest = z.input<typeof CommitRequest>;
export type Lease = z.infer<typeof Lease>;
export type LeaseHolder = z.infer<typeof LeaseHolder>;
export type PcLoginRequest = z.input<typeof PcLoginRequest>;
export type PcLoginResponse = z.infer<typeof PcLoginResponse>;
export type AuditEvent = z.infer<typeof AuditEvent>;
export type AuditQuery = z.input<typeof AuditQuery>;
/** What a client sends to page a list (the schemas coerce the query string's text to numbers). */
export type PageParams = { limit?: number; offset?: number };
export type UserListQuery = PageParams & { search?: string };
export type WorkspaceListQuery = PageParams & { ownerId?: string; search?: string };
export type DeviceListQuery = PageParams & { ownerId?: string; search?: string };

/**
 * A path inside an image, relative to its root: '' is the root, 'home/docs' a folder in it. Segments
 * are separated by one '/', and none may be empty, '.', '..', contain NUL or pass 255 bytes; no
 * leading or trailing '/'.
 */
export const ImagePath = z
  .string()
  .max(4096)
  .superRefine((path, ctx) => {
    if (path === '') return;
    if (path.startsWith('/')) {
      ctx.addIssue({ code: 'custom', message: 'must be relative to the image root (no leading "/")' });
      return;
    }
    if (path.includes('\0')) {
      ctx.addIssue({ code: 'custom', message: 'must not contain NUL' });
      return;
    }
    for (const segment of path.split('/')) {
      if (segment === '' || segment === '.' || segment === '..') {
        ctx.addIssue({ code: 'custom', message: 'must not have empty, "." or ".." segments' });
        return;
      }
      if (new TextEncoder().encode(segment).length > 255) {
        ctx.addIssue({ code: 'custom', message: 'has a name longer than 255 bytes' });
        return;
      }
    }
  });
export const EntryType = z.enum(['file', 'dir', 'symlink', 'whiteout']);
/** Most entries one answer of `GET …/versions/:versionId/tree` holds. */
export const MAX_TREE_PAGE = 5000;
/**
 * `GET …/versions/:versionId/tree`: which folder, and which of its entries (folders first, then
 * the rest, each group by name): `limit` of them from `offset`. A folder may hold a million.
 */
export const TreeQuery = z.object({
  path: ImagePath.default(''),
  limit: z.coerce.number().int().min(1).max(MAX_TREE_PAGE).default(1000),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});
/** `GET …/versions/:versionId/file`: which file. */
export const FileQuery = z.object({ path: ImagePath.refine((p) => p !== '', 'must name a file') });
export const TreeEntry = z.object({
  name: z.string(),
  type: EntryType,
  /** Bytes, for files; null for everything else. */
  size: z.number().int().nonnegative().nullable(),
  /** The entry's modification time (microsecond precision). */
  mtime: Timestamp,
  /** Permission bits with setuid/setgid/sticky (`st_mode & 0o7777`), in decimal. */
  mode: z.number().int().nonnegative(),
  /** A symlink's target, as readlink gives it. */
  target: z.string().optional(),
});
/**
 * One page of a folder of a version: folders first, then the rest, each group by name; `total`
 * entries in the folder (ask again with a higher `offset` for the rest).
 */
export const TreeListing = z.object({
  versionId: Id,
  path: z.string(),
  total: z.number().int().nonnegative(),
  offset: z.number().int().nonnegative(),
  entries: z.array(TreeEntry),
});
export const MAX_DIFF_CHANGES = 10_000;
export const TreeChange = z.object({
  /** Relative to the image root. A folder added or removed whole is one change, not one per file. */
  path: z.string(),
  /** A path whose type changed is reported removed (the old type) and added (the new one). */
  change: z.enum(['added', 'removed', 'modified']),
  type: EntryType,
  sizeBefore: z.number().int().nonnegative().nullable(),
  sizeAfter: z.number().int().nonnegative().nullable(),
});
/** What a version changed against its parent (everything added when it has none). */
export const VersionDiff = z.object({
  versionId: Id,
  parentId: Id.nullable(),
  changes: z.array(TreeChange),
  /** True when there were more than MAX_DIFF_CHANGES changes and the list stops there. */
  truncated: z.boolean(),
});
/**
 * `POST /workspaces/:id/restore`: a new checkpoint on top of HEAD whose root is the version's root,
 * or (with `path`) HEAD's root with that path as it was in the version (removed if it did not exist).
 */
export const RestoreRequest = z.object({
  versionId: Id,
  path: ImagePath.refine((p) => p !== '', 'leave path out to restore the whole version').optional(),
});

export type EntryType = z.infer<typeof EntryType>;
export type TreeEntry = z.infer<typeof TreeEntry>;
export type TreeListing = z.infer<typeof TreeListing>;
export type TreeChange = z.infer<typeof TreeChange>;
export type VersionDiff = z.infer<typeof VersionDiff>;
export type RestoreRequest = z.infer<typeof RestoreRequest>;
