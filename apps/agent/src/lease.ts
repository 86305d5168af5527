import { ApiError, type Lease, type UpcClient } from '@upc/protocol';
import type { LeaseLostError } from './remote.js';
import type { AgentHome, SessionRecord } from './state.js';

/** The name of the PC a `lease_held` answer names, and since when. */
export function holderOf(error: ApiError): { name: string; since: string } | undefined {
  const holder = error.problem.holder as { deviceName?: string; since?: string } | null | undefined;
  if (!holder?.deviceName) return undefined;
  return { name: holder.deviceName, since: holder.since ?? '' };
}

/**
 * Keeps this PC's lease on the workspace: renews it before it expires, and when it turns out
 * lost, takes it back if nobody else has it and HEAD is still this PC's last version.
 */
export class LeaseKeeper {
  /** How often to renew: a third of the lease's time to live as the server last granted it. */
  renewEveryMs = 10_000;

  constructor(
    private readonly client: UpcClient,
    private readonly home: AgentHome,
    private readonly session: SessionRecord,
    private readonly log: (message: string) => void,
  ) {
    const ttl = session.server?.leaseTtlMs;
    if (ttl) this.renewEveryMs = Math.max(1000, Math.floor(ttl / 3));
  }

  private get server(): NonNullable<SessionRecord['server']> {
    if (!this.session.server) throw new Error('not a server session');
    return this.session.server;
  }

  /** Renews the lease; a lost lease is regained if it can be. Transient failures are thrown. */
  async renew(): Promise<'held' | { holder: string }> {
    if (this.session.conflict) return { holder: this.session.conflict.holder };
    try {
      const lease = await this.client.renewLease(
        this.session.workspace.id,
        this.server.deviceId,
        this.server.fencingToken,
      );
      this.learnTtl(lease);
      return 'held';
    } catch (error) {
      if (
        error instanceof ApiError &&
        (error.code === 'lease_not_held' || error.code === 'stale_fencing_token')
      ) {
        const outcome = await this.regain();
        return outcome === 'retry' ? 'held' : outcome;
      }
      throw error;
    }
  }

  private learnTtl(lease: Lease): void {
    const ttl = Date.parse(lease.expiresAt) - Date.parse(lease.renewedAt);
    if (ttl > 0) this.renewEveryMs = Math.max(1000, Math.floor(ttl / 3));
  }

  /**
   * A commit the server took but whose answer never arrived (the daemon died in between) leaves
   * HEAD ahead of `session.committed`, under this PC's own lease. While the lease is still ours
   * with the same fencing token nobody else can have committed, so HEAD is ours: adopt it.
   * True when the lease is still ours and `session.committed` is HEAD (adopted or already).
   */
  private async adoptOwnHead(): Promise<boolean> {
    const workspaceId = this.session.workspace.id;
    try {
      await this.client.renewLease(workspaceId, this.server.deviceId, this.server.fencingToken);
    } catch (error) {
      if (
        error instanceof ApiError &&
        (error.code === 'lease_not_held' || error.code === 'stale_fencing_token')
      ) {
        return false;
      }
      throw error;
    }
    const { headVersionId } = await this.client.getWorkspace(workspaceId);
    if (headVersionId === this.session.committed.versionId) return true;
    if (!headVersionId) return false;
    const head = await this.client.getVersion(workspaceId, headVersionId);
    if (head.deviceId !== this.server.deviceId) return false;
    this.session.committed = { versionId: head.id, root: head.rootTree };
    await this.home.writeSession(this.session);
    this.log(`HEAD ${head.id} is this PC's own commit whose answer was lost; continuing from it`);
    return true;
  }

  /** For the syncer: a commit was refused for the lease. */
  onLeaseLost = async (_error: LeaseLostError): Promise<'retry' | { holder: string }> => this.regain();

  private async regain(): Promise<'retry' | { holder: string }> {
    if (await this.adoptOwnHead()) return 'retry';
    const workspaceId = this.session.workspace.id;
    try {
      const lease = await this.client.acquireLease(workspaceId, this.server.deviceId);
      const workspace = await this.client.getWorkspace(workspaceId);
      if (workspace.headVersionId !== this.session.committed.versionId) {
        // Someone else committed while this PC was away: its changes must not overwrite theirs.
        await this.client
          .releaseLease(workspaceId, this.server.deviceId, lease.fencingToken)
          .catch(() => undefined);
        return { holder: 'a newer version committed elsewhere' };
      }
      this.server.fencingToken = lease.fencingToken;
      this.learnTtl(lease);
      await this.home.writeSession(this.session);
      this.log(`lease regained with fencing token ${lease.fencingToken}`);
      return 'retry';
    } catch (error) {
      if (error instanceof ApiError && error.code === 'lease_held') {
        return { holder: holderOf(error)?.name ?? 'another PC' };
      }
      throw error;
    }
  }
}
