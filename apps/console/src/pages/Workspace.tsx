import { ApiError, type Lease, type User, type Version } from '@upc/protocol';
import { useState } from 'react';
import { api, errorMessage } from '../api.js';
import { Dialog, DialogButtons } from '../components/dialog.js';
import { CursorPager, useCursorPages } from '../components/list.js';
import {
  Empty,
  ErrorState,
  type Outcome,
  OutcomeNotice,
  Pending,
  TableScroll,
} from '../components/states.js';
import { Bytes, DateTime, RelativeTime, WorkspaceSize } from '../components/time.js';
import type { LiveSessions } from '../events.js';
import { formatByteChange, formatNumber } from '../format.js';
import { useAsync, useNow } from '../hooks.js';
import { Link } from '../router.js';
import { PageHeading } from './PageHeading.js';
import { VersionPanel, versionName } from './VersionPanel.js';

const PAGE_SIZE = 20;

/** The server says not found (or the address is not a workspace id at all). */
function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 404 || error.status === 400);
}

/**
 * One workspace: its lease (with force-release) and its version timeline. Admins reach it from
 * Workspaces, a user from My workspaces; the server answers 404 to anyone else.
 */
export function Workspace({
  id,
  versionId,
  me,
  live,
}: {
  id: string;
  /** The version open under the timeline (`/workspaces/:id/versions/:versionId`), if any. */
  versionId?: string;
  me: User;
  live: LiveSessions;
}) {
  // Bumped after a restore, so that the timeline shows the new version.
  const [timelineKey, setTimelineKey] = useState(0);
  const admin = me.role === 'admin';
  const workspace = useAsync(() => api.getWorkspace(id), [id]);
  // Names of the PCs its versions and lease name: its owner's (a PC is registered by its user).
  const ownerId = workspace.data?.ownerId;
  const devices = useAsync(
    async () =>
      new Map(ownerId === undefined ? [] : (await api.listDevices({ ownerId })).map((d) => [d.id, d.name])),
    [ownerId],
  );

  if (workspace.data === undefined) {
    if (isNotFound(workspace.error)) {
      return (
        <>
          <PageHeading title="Workspace not found" />
          <p>
            There is no workspace at this address, or it is not yours to see.{' '}
            <Link to={admin ? '/workspaces' : '/'}>{admin ? 'Go to Workspaces' : 'Go to My workspaces'}</Link>
            .
          </p>
        </>
      );
    }
    return (
      <>
        <PageHeading title="Workspace" />
        <Pending state={workspace} what="the workspace" />
      </>
    );
  }

  const w = workspace.data;
  const deviceName = (deviceId: string | null) =>
    deviceId === null ? undefined : (devices.data?.get(deviceId) ?? undefined);
  const session = live.sessions?.find((s) => s.workspace.id === w.id);

  return (
    <>
      <p className="breadcrumb">
        <Link to={admin ? '/workspaces' : '/'}>{admin ? 'Workspaces' : 'My workspaces'}</Link>
        <span aria-hidden="true"> / </span>
      </p>
      <PageHeading title={w.name} />
      <dl className="facts">
        <div>
          <dt>Owner</dt>
          <dd>{w.ownerName}</dd>
        </div>
        <div>
          <dt>Size</dt>
          <dd>
            <WorkspaceSize stored={w.storedBytes} quota={w.quotaBytes} />
          </dd>
        </div>
        <div>
          <dt>Last activity</dt>
          <dd>
            <RelativeTime iso={w.updatedAt} />
          </dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>
            <RelativeTime iso={w.createdAt} />
          </dd>
        </div>
      </dl>

      <LeaseBox
        workspaceId={w.id}
        // A change in the live session (a PC took or gave up the lease) reloads the lease.
        sessionKey={session ? `${session.device.id}/${session.since}` : ''}
        deviceName={(deviceId) =>
          deviceName(deviceId) ?? (session?.device.id === deviceId ? session.device.name : undefined)
        }
        userName={(userId) =>
          userId === w.ownerId ? w.ownerName : session?.user.id === userId ? session.user.username : undefined
        }
        onReleased={workspace.reload}
      />

      {versionId !== undefined && (
        <VersionPanel
          key={versionId}
          workspaceId={w.id}
          versionId={versionId}
          headVersionId={w.headVersionId}
          onRestored={() => {
            workspace.reload();
            setTimelineKey((k) => k + 1);
          }}
        />
      )}

      <Timeline
        workspaceId={w.id}
        headVersionId={w.headVersionId}
        openVersionId={versionId}
        refreshKey={timelineKey}
        deviceName={deviceName}
      />
    </>
  );
}

function LeaseBox({
  workspaceId,
  sessionKey,
  deviceName,
  userName,
  onReleased,
}: {
  workspaceId: string;
  sessionKey: string;
  deviceName: (id: string) => string | undefined;
  userName: (id: string) => string | undefined;
  onReleased: () => void;
}) {
  const lease = useAsync(() => api.getLease(workspaceId), [workspaceId, sessionKey], 15_000);
  const [confirming, setConfirming] = useState<{ lease: Lease; pc: string } | undefined>(undefined);
  const [message, setMessage] = useState<Outcome | undefined>(undefined);
  const now = useNow();

  const held = lease.data ?? undefined;
  const pc = held ? (deviceName(held.deviceId) ?? 'an unknown PC') : undefined;
  const expired = held !== undefined && Date.parse(held.expiresAt) < now;

  return (
    <section aria-labelledby="lease-heading" className="section">
      <h2 id="lease-heading">Lease</h2>
      <OutcomeNotice outcome={message} />
      <div className="card lease" data-testid="lease">
        {lease.data === undefined ? (
          <Pending state={lease} what="the lease" />
        ) : held === undefined || pc === undefined ? (
          <p className="lease__free">
            <strong>Nobody holds the lease.</strong> The workspace is not in use on any PC.
          </p>
        ) : (
          <>
            <p className="lease__held">
              In use on <strong>{pc}</strong>
              {expired && <span className="badge badge--off">expired</span>}
            </p>
            <dl className="facts facts--compact">
              <div>
                <dt>PC</dt>
                <dd>{pc}</dd>
              </div>
              <div>
                <dt>User</dt>
                <dd>{userName(held.userId) ?? '…'}</dd>
              </div>
              <div>
                <dt>Since</dt>
                <dd>
                  <DateTime iso={held.acquiredAt} />
                </dd>
              </div>
              <div>
                <dt>{expired ? 'Expired' : 'Expires'}</dt>
                <dd>
                  <RelativeTime iso={held.expiresAt} />
                </dd>
              </div>
            </dl>
            <button
              type="button"
              className="danger"
              onClick={() => {
                setMessage(undefined);
                setConfirming({ lease: held, pc });
              }}
            >
              Force-release lease
            </button>
          </>
        )}
      </div>
      {confirming && (
        <ForceRelease
          workspaceId={workspaceId}
          pc={confirming.pc}
          onClose={(done) => {
            setConfirming(undefined);
            if (done === true) {
              setMessage({ text: `Released the lease that ${confirming.pc} held.`, error: false });
              lease.reload();
              onReleased();
            } else if (done !== false) {
              setMessage({ text: `Could not release the lease: ${done}`, error: true });
              lease.reload();
            }
          }}
        />
      )}
    </section>
  );
}

function ForceRelease({
  workspaceId,
  pc,
  onClose,
}: {
  workspaceId: string;
  pc: string;
  /** true: released; false: cancelled; a string: what went wrong. */
  onClose: (done: boolean | string) => void;
}) {
  const [busy, setBusy] = useState(false);
  const release = async () => {
    setBusy(true);
    try {
      await api.forceReleaseLease(workspaceId);
      onClose(true);
    } catch (e) {
      onClose(errorMessage(e));
    }
  };
  return (
    <Dialog
      title={`Force-release the lease held by ${pc}?`}
      onClose={() => {
        onClose(false);
      }}
    >
      <div className="warning">
        <p>
          <strong>{pc} loses its lease on this workspace now</strong>, and another PC can take it.
        </p>
        <p>
          Changes on {pc} that it has not saved yet are kept only as a conflict version, not as the
          workspace’s latest version, once another PC saves the workspace. If {pc} is still running and nobody
          else has saved, it takes the lease back the next time it reaches the server.
        </p>
      </div>
      <DialogButtons
        onCancel={() => {
          onClose(false);
        }}
        focusCancel
      >
        <button type="button" className="danger" disabled={busy} onClick={() => void release()}>
          Force-release
        </button>
      </DialogButtons>
    </Dialog>
  );
}

function Timeline({
  workspaceId,
  headVersionId,
  openVersionId,
  refreshKey,
  deviceName,
}: {
  workspaceId: string;
  headVersionId: string | null;
  openVersionId: string | undefined;
  refreshKey: number;
  deviceName: (id: string | null) => string | undefined;
}) {
  // `before` of each page seen so far; the first page has none.
  const cursorPages = useCursorPages<string>();
  const before = cursorPages.before;
  // One more than shown: it tells whether there is an older page, and the size change of the oldest shown.
  const versions = useAsync(
    () => api.listVersions(workspaceId, { limit: PAGE_SIZE + 1, before }),
    [workspaceId, before, refreshKey],
  );
  const list = versions.data ?? [];
  const shown = list.slice(0, PAGE_SIZE);
  const hasOlder = list.length > PAGE_SIZE;
  const pageNumber = cursorPages.pageNumber;

  const change = (v: Version, i: number): number | undefined => {
    const older = list.find((o) => o.id === v.parentId) ?? (v.parentId === null ? undefined : list[i + 1]);
    const bytes = v.stats.bytes;
    if (bytes === undefined) return undefined;
    if (v.parentId === null) return bytes;
    const before = older?.stats.bytes;
    return before === undefined ? undefined : bytes - before;
  };

  return (
    <section aria-labelledby="versions-heading" className="section">
      <div className="section__head">
        <h2 id="versions-heading">Version timeline</h2>
        {versions.data !== undefined && (
          <button type="button" onClick={versions.reload} disabled={versions.loading}>
            Refresh versions
          </button>
        )}
      </div>
      {versions.data === undefined ? (
        <Pending state={versions} what="the versions" />
      ) : shown.length === 0 ? (
        <Empty>
          {pageNumber === 1 ? 'No versions yet: no PC has saved this workspace.' : 'No older versions.'}
        </Empty>
      ) : (
        <>
          {versions.error !== undefined && (
            <ErrorState what="the latest versions" error={versions.error} retry={versions.reload} />
          )}
          <TableScroll label="Versions (scrollable)">
            <table aria-label="Versions" className="data-table">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Kind</th>
                  <th scope="col">PC</th>
                  <th scope="col" className="num">
                    Files
                  </th>
                  <th scope="col" className="num">
                    Size
                  </th>
                  <th scope="col" className="num">
                    Change
                  </th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {shown.map((v, i) => {
                  const delta = change(v, i);
                  return (
                    <tr key={v.id} className={v.id === openVersionId ? 'row--open' : undefined}>
                      <td>
                        <DateTime iso={v.createdAt} />
                        {v.id === headVersionId && <span className="badge badge--head">HEAD</span>}
                      </td>
                      <td>
                        <span className={`kind kind--${v.kind}`}>{v.kind}</span>
                      </td>
                      <td>
                        {v.deviceId === null ? (
                          <span className="muted">server</span>
                        ) : (
                          (deviceName(v.deviceId) ?? <span className="muted">unknown PC</span>)
                        )}
                      </td>
                      <td className="num">
                        {v.stats.files === undefined ? '—' : formatNumber(v.stats.files)}
                      </td>
                      <td className="num">
                        {v.stats.bytes === undefined ? '—' : <Bytes value={v.stats.bytes} />}
                      </td>
                      <td className="num">
                        {delta === undefined ? (
                          <span className="muted" title="Not known for this version">
                            —
                          </span>
                        ) : (
                          <span
                            className={
                              delta > 0 ? 'delta delta--up' : delta < 0 ? 'delta delta--down' : 'muted'
                            }
                          >
                            {formatByteChange(delta)}
                          </span>
                        )}
                      </td>
                      <td>
                        <Link
                          to={`/workspaces/${encodeURIComponent(workspaceId)}/versions/${encodeURIComponent(v.id)}`}
                          aria-label={`Browse ${versionName(v)}`}
                        >
                          Browse
                        </Link>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </TableScroll>
          <CursorPager
            label="Pages of versions"
            pages={cursorPages}
            hasOlder={hasOlder}
            oldest={shown[shown.length - 1]?.createdAt}
          >
            Page {pageNumber} · {pageNumber === 1 ? 'newest first' : 'older versions'}
          </CursorPager>
        </>
      )}
    </section>
  );
}
