import { z } from 'zod';
import { ERRORS, isErrorCode, type ErrorCode, type Problem } from './errors.js';
import { ObjectRecordFormatError, parseObjectRecords } from './records.js';
import * as S from './schemas.js';

/** An error answer from the server, carrying its problem document. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    readonly problem: Problem,
  ) {
    super(problem.detail ?? problem.title);
  }
}

export interface ClientOptions {
  baseUrl: string;
  token?: string;
  fetch?: typeof fetch;
}

type Query = Record<string, string | number | undefined>;

/** One page of a list, and how many items match on every page together (X-Total-Count). */
export interface ListPage<T> {
  items: T[];
  total: number;
}

/** A typed client for /api/v1. Every answer is validated against the protocol's schemas. */
export class UpcClient {
  private readonly base: string;
  private readonly fetchFn: typeof fetch;
  token: string | undefined;

  constructor(options: ClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '') + '/api/v1';
    this.token = options.token;
    // Bound: a browser's fetch called as a method of another object throws "Illegal invocation".
    this.fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  health = () => this.json('GET', '/health', S.Health, undefined, { allowStatus: [503] });

  async login(username: string, password: string): Promise<S.LoginResponse> {
    const answer = await this.json('POST', '/auth/login', S.LoginResponse, { username, password });
    this.token = answer.token;
    return answer;
  }
  /**
   * An agent's login in one request: sign-in, device, workspace (created if missing), lease and HEAD.
   * Keeps the answer's token like `login`; a failing step throws that step's ApiError, and the server
   * issued no token for it.
   */
  async pcLogin(body: S.PcLoginRequest): Promise<S.PcLoginResponse> {
    const answer = await this.json('POST', '/auth/pc-login', S.PcLoginResponse, body);
    this.token = answer.token;
    return answer;
  }
  logout = () => this.empty('POST', '/auth/logout');
  me = () => this.json('GET', '/auth/me', S.User);

  createUser = (body: S.CreateUserRequest) => this.json('POST', '/users', S.User, body);
  listUsers = (query: S.UserListQuery = {}) => this.json('GET', '/users' + qs(query), z.array(S.User));
  /** A page of users (`limit`, `offset`, `search`), with how many match in all. */
  listUsersPage = (query: S.UserListQuery & { limit: number }) => this.page('/users', S.User, query);
  updateUser = (id: string, body: S.UpdateUserRequest) => this.json('PATCH', `/users/${id}`, S.User, body);
  resetPassword = (id: string, password: string) => this.empty('POST', `/users/${id}/password`, { password });
  deleteUser = (id: string) => this.empty('DELETE', `/users/${id}`);

  registerDevice = (body: S.RegisterDeviceRequest) => this.json('POST', '/devices', S.Device, body);
  heartbeat = (id: string, body: S.HeartbeatRequest = {}) =>
    this.json('POST', `/devices/${id}/heartbeat`, S.Device, body);
  listDevices = (query: S.DeviceListQuery = {}) =>
    this.json('GET', '/devices' + qs(query), z.array(S.Device));
  /** A page of PCs (`limit`, `offset`, `search`, `ownerId`), with how many match in all. */
  listDevicesPage = (query: S.DeviceListQuery & { limit: number }) => this.page('/devices', S.Device, query);
  /** The device's local-cache key, created on the first call; only its owner gets it. */
  deviceCacheKey = (deviceId: string) => this.json('POST', `/devices/${deviceId}/cache-key`, S.CacheKey);
  revokeDeviceCacheKey = (deviceId: string) => this.empty('DELETE', `/devices/${deviceId}/cache-key`);

  /** Totals and series for the console (admins). */
  stats = () => this.json('GET', '/stats', S.Stats);

  createWorkspace = (body: S.CreateWorkspaceRequest) => this.json('POST', '/workspaces', S.Workspace, body);
  listWorkspaces = (query: S.WorkspaceListQuery = {}) =>
    this.json('GET', '/workspaces' + qs(query), z.array(S.Workspace));
  /** A page of workspaces (`limit`, `offset`, `search`, `ownerId`), with how many match in all. */
  listWorkspacesPage = (query: S.WorkspaceListQuery & { limit: number }) =>
    this.page('/workspaces', S.Workspace, query);
  getWorkspace = (id: string) => this.json('GET', `/workspaces/${id}`, S.Workspace);
  setPolicy = (id: string, policy: Record<string, unknown> | null) =>
    this.json('PUT', `/workspaces/${id}/policy`, S.Workspace, { policy });
  setQuota = (id: string, quotaBytes: number | null) =>
    this.json('PUT', `/workspaces/${id}/quota`, S.Workspace, { quotaBytes });
  deleteWorkspace = (id: string) => this.empty('DELETE', `/workspaces/${id}`);

  async missingObjects(workspaceId: string, hashes: string[]): Promise<string[]> {
    const answer = await this.json(
      'POST',
      `/workspaces/${workspaceId}/objects/missing`,
      S.MissingObjectsResponse,
      {
        hashes,
      },
    );
    return answer.missing;
  }
  uploadObject = (workspaceId: string, hash: string, bytes: Uint8Array) =>
    this.json('PUT', `/workspaces/${workspaceId}/objects/${hash}`, S.StoredObject, bytes);
  uploadPack = (workspaceId: string, hash: string, bytes: Uint8Array) =>
    this.json('PUT', `/workspaces/${workspaceId}/packs/${hash}`, S.StoredPack, bytes);

  /** An object's bytes, or `range` of them (inclusive, as in HTTP). */
  async downloadObject(
    workspaceId: string,
    hash: string,
    range?: { start: number; end?: number },
  ): Promise<Uint8Array> {
    const headers: Record<string, string> = {};
    if (range) headers.range = `bytes=${range.start}-${range.end ?? ''}`;
    const res = await this.send('GET', `/workspaces/${workspaceId}/objects/${hash}`, undefined, headers);
    return new Uint8Array(await res.arrayBuffer());
  }

  /**
   * The stored form of each of `hashes` the workspace has, keyed by hash (as `downloadObject` returns
   * it); a hash missing from the map is not in the workspace. Asks `POST objects/fetch` as often as it
   * takes: at most MAX_HASHES_PER_REQUEST hashes a request, and again for those after a capped answer.
   * Everything asked for is held in memory at once, so pass as many hashes as you want held. Throws
   * ObjectRecordFormatError when an answer is cut short or names an object that was not asked for (or
   * not in the order asked).
   */
  async fetchObjects(workspaceId: string, hashes: readonly string[]): Promise<Map<string, Uint8Array>> {
    const wanted = [...new Set(hashes)];
    const found = new Map<string, Uint8Array>();
    let next = 0;
    while (next < wanted.length) {
      const batch = wanted.slice(next, next + S.MAX_HASHES_PER_REQUEST);
      const res = await this.send('POST', `/workspaces/${workspaceId}/objects/fetch`, { hashes: batch });
      const records = parseObjectRecords(new Uint8Array(await res.arrayBuffer()));
      const position = new Map(batch.map((hash, i) => [hash, i]));
      // The answer covers batch[0 .. answered): records in request order, the rest left for the next ask.
      let answered = 0;
      for (const record of records) {
        const at = position.get(record.hash);
        if (at === undefined) {
          throw new ObjectRecordFormatError(`the server sent object ${record.hash}, which was not asked for`);
        }
        if (at < answered) {
          throw new ObjectRecordFormatError(`the server sent object ${record.hash} twice or out of order`);
        }
        found.set(record.hash, record.bytes);
        answered = at + 1;
      }
      // No records at all: the workspace has none of the batch.
      next += records.length === 0 ? batch.length : answered;
    }
    return found;
  }

  listVersions = (workspaceId: string, query: Query = {}) =>
    this.json('GET', `/workspaces/${workspaceId}/versions` + qs(query), z.array(S.Version));
  getVersion = (workspaceId: string, versionId: string) =>
    this.json('GET', `/workspaces/${workspaceId}/versions/${versionId}`, S.Version);
  commit = (workspaceId: string, body: S.CommitRequest) =>
    this.json('POST', `/workspaces/${workspaceId}/versions`, S.Version, body);

  /**
   * A page of one folder of a version (`path` relative to the image root; '' for the root): `limit`
   * entries (the server's default: 1,000) from `offset`, and the folder's `total`.
   */
  listTree = (workspaceId: string, versionId: string, path = '', page: S.PageParams = {}) =>
    this.json(
      'GET',
      `/workspaces/${workspaceId}/versions/${versionId}/tree` + qs({ path, ...page }),
      S.TreeListing,
    );
  /** A file's bytes as they were in the version. */
  async downloadFile(workspaceId: string, versionId: string, path: string): Promise<Uint8Array> {
    const res = await this.send(
      'GET',
      `/workspaces/${workspaceId}/versions/${versionId}/file` + qs({ path }),
      undefined,
    );
    return new Uint8Array(await res.arrayBuffer());
  }
  /** What the version changed against its parent. */
  diffVersion = (workspaceId: string, versionId: string) =>
    this.json('GET', `/workspaces/${workspaceId}/versions/${versionId}/diff`, S.VersionDiff);
  /** Makes a version (or one path of it) the workspace's new HEAD, as a new checkpoint version. */
  restore = (workspaceId: string, body: S.RestoreRequest) =>
    this.json('POST', `/workspaces/${workspaceId}/restore`, S.Version, body);

  getLease = (workspaceId: string) =>
    this.json('GET', `/workspaces/${workspaceId}/lease`, S.Lease.nullable());
  acquireLease = (workspaceId: string, deviceId: string, ttlSeconds?: number) =>
    this.json('POST', `/workspaces/${workspaceId}/lease`, S.Lease, { deviceId, ttlSeconds });
  renewLease = (workspaceId: string, deviceId: string, fencingToken: number) =>
    this.json('POST', `/workspaces/${workspaceId}/lease/renew`, S.Lease, { deviceId, fencingToken });
  releaseLease = (workspaceId: string, deviceId: string, fencingToken: number) =>
    this.empty('POST', `/workspaces/${workspaceId}/lease/release`, { deviceId, fencingToken });
  takeOverLease = (workspaceId: string, deviceId: string, ttlSeconds?: number) =>
    this.json('POST', `/workspaces/${workspaceId}/lease/takeover`, S.Lease, { deviceId, ttlSeconds });
  forceReleaseLease = (workspaceId: string) => this.empty('DELETE', `/workspaces/${workspaceId}/lease`);

  listAudit = (query: S.AuditQuery = {}) =>
    this.json('GET', '/audit' + qs(query as Query), z.array(S.AuditEvent));

  private async json<T extends z.ZodType>(
    method: string,
    path: string,
    schema: T,
    body?: unknown,
    options: { allowStatus?: number[] } = {},
  ): Promise<z.infer<T>> {
    const res = await this.send(method, path, body, {}, options.allowStatus);
    return schema.parse(await res.json());
  }

  private async page<T extends z.ZodType>(
    path: string,
    schema: T,
    query: Query,
  ): Promise<ListPage<z.infer<T>>> {
    const res = await this.send('GET', path + qs(query), undefined);
    const items = z.array(schema).parse(await res.json());
    const total = Number(res.headers.get(S.TOTAL_COUNT_HEADER) ?? Number.NaN);
    if (!Number.isSafeInteger(total) || total < 0) {
      throw new Error(`the server's answer to GET ${path} has no valid ${S.TOTAL_COUNT_HEADER} header`);
    }
    return { items, total };
  }

  private async empty(method: string, path: string, body?: unknown): Promise<void> {
    const res = await this.send(method, path, body);
    await res.body?.cancel();
  }

  private async send(
    method: string,
    path: string,
    body: unknown,
    extraHeaders: Record<string, string> = {},
    allowStatus: number[] = [],
  ): Promise<Response> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let payload: string | Uint8Array | undefined;
    if (body instanceof Uint8Array) {
      headers['content-type'] = 'application/octet-stream';
      payload = body;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await this.fetchFn(this.base + path, { method, headers, body: payload });
    if (res.ok || allowStatus.includes(res.status)) return res;
    throw await toApiError(res);
  }
}

async function toApiError(res: Response): Promise<ApiError> {
  const text = await res.text();
  let problem: Problem;
  try {
    const parsed = JSON.parse(text) as Partial<Problem>;
    const code: ErrorCode = isErrorCode(parsed.code) ? parsed.code : 'internal';
    problem = { type: '', title: ERRORS[code].title, ...parsed, status: res.status, code };
  } catch {
    problem = {
      type: '',
      title: res.statusText,
      status: res.status,
      code: 'internal',
      detail: text.slice(0, 200),
    };
  }
  return new ApiError(res.status, problem.code, problem);
}

function qs(query: Query): string {
  const entries = Object.entries(query).filter((e): e is [string, string | number] => e[1] !== undefined);
  return entries.length === 0
    ? ''
    : '?' + new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)])).toString();
}
