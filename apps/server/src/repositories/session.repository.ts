import { Inject, Injectable } from '@nestjs/common';
import { DATABASE } from './tokens.js';
import type { Database } from './database.js';

/** A lease held now, with what the console shows of it; ownerId decides who may see it. */
export interface LiveSessionRow {
  workspaceId: string;
  workspaceName: string;
  ownerId: string;
  userId: string;
  username: string;
  deviceId: string;
  deviceName: string;
  since: Date;
  lastSync: Date | null;
  pendingBytes: bigint | null;
  state: string | null;
  lastSeenAt: Date;
}

/** Sessions running now: workspaces whose lease a device holds and has not let expire. */
@Injectable()
export class SessionRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  /**
   * Every live session, in one statement (the last sync is the newest version that device committed
   * to that workspace, found through the (workspace_id, created_at) index). Expiry uses the database's
   * clock, as the lease rules do. The user is the one who took the lease, as in LeaseHolder.
   */
  listLive(): Promise<LiveSessionRow[]> {
    return this.db.$queryRaw<LiveSessionRow[]>`
      SELECT l.workspace_id AS "workspaceId", w.name AS "workspaceName", w.owner_id AS "ownerId",
             l.user_id AS "userId", coalesce(u.username, '(deleted user)') AS "username",
             d.id AS "deviceId", d.name AS "deviceName", l.acquired_at AS "since",
             (SELECT v.created_at FROM versions v
               WHERE v.workspace_id = l.workspace_id AND v.device_id = l.device_id
               ORDER BY v.created_at DESC LIMIT 1) AS "lastSync",
             d.pending_bytes AS "pendingBytes", d.session_state AS "state", d.last_seen_at AS "lastSeenAt"
      FROM leases l
      JOIN workspaces w ON w.id = l.workspace_id
      JOIN devices d ON d.id = l.device_id
      LEFT JOIN users u ON u.id = l.user_id
      WHERE l.expires_at > now()
      ORDER BY l.acquired_at, l.workspace_id`;
  }
}
