import { ApiError, type TreeEntry, type Version } from '@upc/protocol';
import { useEffect, useRef, useState } from 'react';
import { api, errorMessage } from '../api.js';
import { Dialog, DialogButtons } from '../components/dialog.js';
import { ListPager } from '../components/list.js';
import { pageOf } from '../components/pager.js';
import { Empty, Pending, TableScroll } from '../components/states.js';
import { Bytes, DateTime } from '../components/time.js';
import { formatBytes, formatDateTime } from '../format.js';
import { useAsync } from '../hooks.js';
import { Link, navigate, useQueryParam, withQueryParam } from '../router.js';

/** The query parameter that holds the folder open in the file browser. */
const FOLDER_PARAM = 'path';

/** Rows of a folder or of a diff shown at once: a folder is paged by the server, a diff in the browser. */
const ROWS = 100;

/** "the sync version of 27 Nov 2026, 14:21:45": how a version is named to people. */
export function versionName(v: Version): string {
  return `the ${v.kind} version of ${formatDateTime(new Date(v.createdAt))}`;
}

function joinPath(folder: string, name: string): string {
  return folder === '' ? name : `${folder}/${name}`;
}

/** What to restore: the whole version, or one path of it. */
interface RestoreTarget {
  path?: string;
  label: string;
}

/**
 * One version of a workspace, under its timeline's page: its files (a folder at a time, with
 * downloads), what it changed against its parent, and restoring it (or one path of it) as a new HEAD.
 */
export function VersionPanel({
  workspaceId,
  versionId,
  headVersionId,
  onRestored,
}: {
  workspaceId: string;
  versionId: string;
  headVersionId: string | null;
  onRestored: () => void;
}) {
  const version = useAsync(() => api.getVersion(workspaceId, versionId), [workspaceId, versionId]);
  const [comparing, setComparing] = useState(false);
  const [restoring, setRestoring] = useState<RestoreTarget | undefined>(undefined);
  const [restored, setRestored] = useState<{ version: Version; label: string } | undefined>(undefined);
  const headingRef = useRef<HTMLHeadingElement>(null);

  // Opening a version moves focus (and the view) to it, as a new page would.
  useEffect(() => {
    headingRef.current?.focus();
    headingRef.current?.scrollIntoView({ block: 'start' });
  }, [versionId]);

  const v = version.data;
  const title = v ? `Version: ${v.kind}, ${formatDateTime(new Date(v.createdAt))}` : 'Version';
  const back = `/workspaces/${encodeURIComponent(workspaceId)}`;

  return (
    <section aria-labelledby="version-heading" className="section card version">
      <div className="section__head">
        <h2 id="version-heading" ref={headingRef} tabIndex={-1} className="page-title">
          {title}
          {v && v.id === headVersionId && <span className="badge badge--head">HEAD</span>}
        </h2>
        <Link to={back}>Close this version</Link>
      </div>
      {v === undefined ? (
        version.error instanceof ApiError && version.error.status === 404 ? (
          <p role="alert">This workspace has no such version.</p>
        ) : (
          <Pending state={version} what="the version" />
        )
      ) : (
        <>
          {restored && (
            <p className="notice" role="status">
              Restored {restored.label} as a new {restored.version.kind} version of{' '}
              <DateTime iso={restored.version.createdAt} />, now HEAD.{' '}
              <Link
                to={`${back}/versions/${encodeURIComponent(restored.version.id)}`}
                onClick={() => {
                  setRestored(undefined);
                }}
              >
                Browse the new version
              </Link>
            </p>
          )}
          <div className="row-actions version__actions">
            <button
              type="button"
              aria-expanded={comparing}
              aria-controls="changes-section"
              onClick={() => {
                setComparing((c) => !c);
              }}
            >
              {comparing ? 'Hide changes' : 'Compare with previous'}
            </button>
            <button
              type="button"
              onClick={() => {
                setRestored(undefined);
                setRestoring({ label: versionName(v) });
              }}
            >
              Restore this version
            </button>
          </div>
          <div id="changes-section">{comparing && <Changes workspaceId={workspaceId} version={v} />}</div>
          <Files
            workspaceId={workspaceId}
            versionId={v.id}
            onRestore={(path) => {
              setRestored(undefined);
              setRestoring({ path, label: `${path} from ${versionName(v)}` });
            }}
          />
          {restoring && (
            <RestoreDialog
              workspaceId={workspaceId}
              version={v}
              target={restoring}
              onClose={(done) => {
                setRestoring(undefined);
                if (done) {
                  setRestored({ version: done, label: restoring.label });
                  onRestored();
                }
              }}
            />
          )}
        </>
      )}
    </section>
  );
}

/** Bytes as a browser download: fetched with the token (it is not a cookie), saved from a Blob URL. */
async function download(workspaceId: string, versionId: string, path: string, name: string): Promise<void> {
  const bytes = await api.downloadFile(workspaceId, versionId, path);
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>]));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => {
    URL.revokeObjectURL(url);
  }, 60_000);
}

function Files({
  workspaceId,
  versionId,
  onRestore,
}: {
  workspaceId: string;
  versionId: string;
  onRestore: (path: string) => void;
}) {
  // The open folder is in the address (?path=home/docs), so that a reload, a bookmark or Back keeps it.
  // Absent: not chosen yet, the version's `home` layer when it has one, else the image root ('').
  const path = useQueryParam(FOLDER_PARAM) ?? undefined;
  // The page of the folder chosen, for that folder: another folder starts at page 1.
  const [chosen, setChosen] = useState({ path, page: 1 });
  const page = chosen.path === path ? chosen.page : 1;
  const setPage = (to: number) => {
    setChosen({ path, page: to });
  };
  const [problem, setProblem] = useState<string | undefined>(undefined);
  // The server pages a folder (it may hold a million entries): one page of ROWS at a time.
  const listing = useAsync(async () => {
    const rows = { limit: ROWS, offset: (page - 1) * ROWS };
    if (path !== undefined) return api.listTree(workspaceId, versionId, path, rows);
    // Folders come first: the root's first page says whether it has the home layer.
    const root = await api.listTree(workspaceId, versionId, '', { limit: ROWS });
    const home = root.entries.some((e) => e.name === 'home' && e.type === 'dir');
    if (home) return api.listTree(workspaceId, versionId, 'home', rows);
    return page === 1 ? root : api.listTree(workspaceId, versionId, '', rows);
  }, [workspaceId, versionId, path, page]);

  const current = listing.data?.path ?? path ?? '';
  const segments = current === '' ? [] : current.split('/');
  const open = (to: string) => {
    setProblem(undefined);
    navigate(withQueryParam(FOLDER_PARAM, to));
  };
  const stale =
    listing.loading && listing.data !== undefined && path !== undefined && listing.data.path !== path;
  const shown = listing.data?.entries ?? [];
  const pages = Math.max(1, Math.ceil((listing.data?.total ?? 0) / ROWS));
  const pageNumber = Math.min(Math.max(1, page), pages);

  const save = async (entry: TreeEntry) => {
    setProblem(undefined);
    try {
      await download(workspaceId, versionId, joinPath(current, entry.name), entry.name);
    } catch (e) {
      setProblem(`Could not download ${entry.name}. ${errorMessage(e)}`);
    }
  };

  return (
    <section aria-labelledby="files-heading" className="section">
      <h3 id="files-heading">Files</h3>
      <nav aria-label="Folder" className="path">
        <ol>
          <li>
            {segments.length === 0 ? (
              <span aria-current="location">Image root</span>
            ) : (
              <button
                type="button"
                className="link-button"
                onClick={() => {
                  open('');
                }}
              >
                Image root
              </button>
            )}
          </li>
          {segments.map((segment, i) => (
            <li key={segments.slice(0, i + 1).join('/')}>
              <span aria-hidden="true">/</span>
              {i === segments.length - 1 ? (
                <span aria-current="location">{segment}</span>
              ) : (
                <button
                  type="button"
                  className="link-button"
                  onClick={() => {
                    open(segments.slice(0, i + 1).join('/'));
                  }}
                >
                  {segment}
                </button>
              )}
            </li>
          ))}
        </ol>
      </nav>
      {problem && (
        <p className="form-error" role="alert">
          {problem}
        </p>
      )}
      {listing.data === undefined || stale || listing.error !== undefined ? (
        // A folder that failed to load shows why, not the folder open before it.
        <Pending state={listing} what="the folder" />
      ) : shown.length === 0 ? (
        <Empty>This folder is empty in this version.</Empty>
      ) : (
        <>
          <TableScroll label="Files (scrollable)">
            <table aria-label="Files" className="data-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col" className="num">
                    Size
                  </th>
                  <th scope="col">Modified</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {shown.map((entry) => (
                  <tr key={entry.name}>
                    <td>
                      {entry.type === 'dir' ? (
                        <button
                          type="button"
                          className="link-button"
                          aria-label={`Folder ${entry.name}`}
                          onClick={() => {
                            open(joinPath(current, entry.name));
                          }}
                        >
                          {entry.name}/
                        </button>
                      ) : entry.type === 'symlink' ? (
                        <>
                          {entry.name}{' '}
                          <span className="muted">
                            <span aria-hidden="true">→</span>
                            <span className="visually-hidden">links to</span> {entry.target ?? '?'}
                          </span>
                        </>
                      ) : entry.type === 'whiteout' ? (
                        <>
                          <s>{entry.name}</s> <span className="badge badge--off">deleted here</span>
                        </>
                      ) : (
                        entry.name
                      )}
                    </td>
                    <td className="num">{entry.size === null ? '—' : <Bytes value={entry.size} />}</td>
                    <td>{entry.type === 'whiteout' ? '—' : <DateTime iso={entry.mtime} />}</td>
                    <td>
                      <div className="row-actions">
                        {entry.type === 'file' && (
                          <button
                            type="button"
                            aria-label={`Download ${entry.name}`}
                            onClick={() => void save(entry)}
                          >
                            Download
                          </button>
                        )}
                        {entry.type !== 'whiteout' && (
                          <button
                            type="button"
                            aria-label={`Restore ${entry.name}`}
                            onClick={() => {
                              onRestore(joinPath(current, entry.name));
                            }}
                          >
                            Restore
                          </button>
                        )}
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableScroll>
          {pages > 1 && (
            <ListPager label="Pages of files" current={pageNumber} pages={pages} onPage={setPage}>
              Page {pageNumber} of {pages}
            </ListPager>
          )}
        </>
      )}
    </section>
  );
}

function sizeText(bytes: number | null): string {
  return bytes === null ? '—' : formatBytes(bytes);
}

function Changes({ workspaceId, version }: { workspaceId: string; version: Version }) {
  const diff = useAsync(() => api.diffVersion(workspaceId, version.id), [workspaceId, version.id]);
  const [page, setPage] = useState(1);
  const { shown, current, pages } = pageOf(diff.data?.changes ?? [], page, ROWS);

  return (
    <section aria-labelledby="changes-heading" className="section">
      <h3 id="changes-heading">Changes against the previous version</h3>
      {diff.data === undefined ? (
        <Pending state={diff} what="the changes" />
      ) : (
        <>
          {diff.data.parentId === null && (
            <p className="muted">This is the first version: everything in it was added.</p>
          )}
          {diff.data.truncated && (
            <p className="warning" role="note">
              There are more changes than the server lists: only the first {diff.data.changes.length} are
              shown.
            </p>
          )}
          {shown.length === 0 ? (
            <Empty>No changes: this version has the same files as the previous one.</Empty>
          ) : (
            <>
              <TableScroll label="Changes (scrollable)">
                <table aria-label="Changes" className="data-table">
                  <thead>
                    <tr>
                      <th scope="col">Path</th>
                      <th scope="col">Change</th>
                      <th scope="col" className="num">
                        Size before → after
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {shown.map((c) => (
                      <tr key={`${c.path}:${c.change}:${c.type}`}>
                        <td className="wrap">
                          <code>{c.path}</code>
                          {c.type === 'dir' && <span className="muted"> (folder)</span>}
                          {c.type === 'symlink' && <span className="muted"> (link)</span>}
                        </td>
                        <td>
                          <span className={`change change--${c.change}`}>{c.change}</span>
                        </td>
                        <td className="num">
                          {sizeText(c.sizeBefore)} → {sizeText(c.sizeAfter)}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableScroll>
              {pages > 1 && (
                <ListPager label="Pages of changes" current={current} pages={pages} onPage={setPage}>
                  Page {current} of {pages}
                </ListPager>
              )}
            </>
          )}
        </>
      )}
    </section>
  );
}

/** The PC named in a 409 lease_held, or undefined for any other error. */
function leaseHolder(error: unknown): { pc: string; user?: string } | undefined {
  if (!(error instanceof ApiError) || error.code !== 'lease_held') return undefined;
  const holder = error.problem.holder as { deviceName?: unknown; username?: unknown } | undefined;
  const pc = typeof holder?.deviceName === 'string' ? holder.deviceName : 'another PC';
  return { pc, user: typeof holder?.username === 'string' ? holder.username : undefined };
}

function RestoreDialog({
  workspaceId,
  version,
  target,
  onClose,
}: {
  workspaceId: string;
  version: Version;
  target: RestoreTarget;
  /** The new version, or undefined when cancelled. */
  onClose: (done: Version | undefined) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const restore = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const created = await api.restore(workspaceId, { versionId: version.id, path: target.path });
      onClose(created);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  const holder = leaseHolder(error);
  const when = formatDateTime(new Date(version.createdAt));
  return (
    <Dialog
      title={target.path === undefined ? 'Restore this version?' : `Restore ${target.path}?`}
      onClose={() => {
        onClose(undefined);
      }}
    >
      <p>
        {target.path === undefined ? (
          <>
            The workspace’s files become those of the {version.kind} version of {when}.
          </>
        ) : (
          <>
            <code>{target.path}</code> goes back to how it was in the {version.kind} version of {when}; every
            other file stays as it is in the latest version.
          </>
        )}
      </p>
      <p>
        This makes <strong>a new version on top of the latest one (HEAD)</strong>.{' '}
        <strong>Nothing is deleted from the history</strong>: the current latest version stays in the timeline
        and can be restored in turn. PCs get the restored files the next time they sign in to the workspace.
      </p>
      {error !== undefined && (
        <div className="form-error" role="alert">
          {holder ? (
            <p>
              The workspace is in use on <strong>{holder.pc}</strong>
              {holder.user !== undefined && <> by {holder.user}</>}, so it cannot be restored now. Log out of
              uPC on {holder.pc} (which saves its work), or force-release its lease in the Lease section of
              this page, then try again.
            </p>
          ) : (
            <p>Could not restore: {errorMessage(error)}</p>
          )}
        </div>
      )}
      <DialogButtons
        onCancel={() => {
          onClose(undefined);
        }}
        focusCancel
      >
        <button type="button" className="primary" disabled={busy} onClick={() => void restore()}>
          {busy ? 'Restoring…' : 'Restore'}
        </button>
      </DialogButtons>
    </Dialog>
  );
}
