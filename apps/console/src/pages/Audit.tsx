import type { AuditEvent } from '@upc/protocol';
import { useState } from 'react';
import { api } from '../api.js';
import { type Choice, SelectField, TextField } from '../components/fields.js';
import { CursorPager, useCursorPages } from '../components/list.js';
import { Empty, ErrorState, Pending, TableScroll } from '../components/states.js';
import { DateTime } from '../components/time.js';
import { useAsync } from '../hooks.js';
import { Link } from '../router.js';
import { PageHeading } from './PageHeading.js';

const PAGE_SIZE = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the server records; the filter matches the start of an action, so "lease." picks every lease event. */
const ACTIONS: Choice[] = [
  { value: 'auth.', label: 'Sign-in and sign-out (all)' },
  { value: 'auth.login', label: 'auth.login' },
  { value: 'auth.login_failed', label: 'auth.login_failed' },
  { value: 'auth.logout', label: 'auth.logout' },
  { value: 'auth.rate_limited', label: 'auth.rate_limited' },
  { value: 'lease.', label: 'Leases (all)' },
  { value: 'lease.acquire', label: 'lease.acquire' },
  { value: 'lease.release', label: 'lease.release' },
  { value: 'lease.takeover', label: 'lease.takeover' },
  { value: 'lease.force_release', label: 'lease.force_release' },
  { value: 'version.commit', label: 'version.commit' },
  { value: 'workspace.', label: 'Workspaces (all)' },
  { value: 'workspace.create', label: 'workspace.create' },
  { value: 'workspace.set_policy', label: 'workspace.set_policy' },
  { value: 'workspace.set_quota', label: 'workspace.set_quota' },
  { value: 'workspace.delete', label: 'workspace.delete' },
  { value: 'user.', label: 'Users (all)' },
  { value: 'user.create', label: 'user.create' },
  { value: 'user.disable', label: 'user.disable' },
  { value: 'user.enable', label: 'user.enable' },
  { value: 'user.reset_password', label: 'user.reset_password' },
  { value: 'user.delete', label: 'user.delete' },
  { value: 'device.', label: 'PCs (all)' },
  { value: 'object.upload', label: 'object.upload' },
  { value: 'pack.upload', label: 'pack.upload' },
];

interface Filters {
  actorId: string;
  workspaceId: string;
  action: string;
  /** datetime-local values, in the browser's time zone. */
  since: string;
  until: string;
}
const NO_FILTERS: Filters = { actorId: '', workspaceId: '', action: '', since: '', until: '' };

function toIso(local: string): string | undefined {
  if (!local) return undefined;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

interface Names {
  users: Map<string, string>;
  workspaces: Map<string, string>;
  devices: Map<string, string>;
}

/** The audit log (admins): newest first, filtered, paged with the server's cursor. */
export function Audit() {
  const names = useAsync(async (): Promise<Names> => {
    const [users, workspaces, devices] = await Promise.all([
      api.listUsers(),
      api.listWorkspaces(),
      api.listDevices(),
    ]);
    return {
      users: new Map(users.map((u) => [u.id, u.username])),
      workspaces: new Map(workspaces.map((w) => [w.id, w.name])),
      devices: new Map(devices.map((d) => [d.id, d.name])),
    };
  }, []);
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  // `before` of each page seen so far (event ids); the first page has none.
  const cursorPages = useCursorPages<number>();
  const before = cursorPages.before;
  const events = useAsync(
    () =>
      api.listAudit({
        actorId: filters.actorId || undefined,
        workspaceId: filters.workspaceId || undefined,
        action: filters.action || undefined,
        since: toIso(filters.since),
        until: toIso(filters.until),
        before,
        limit: PAGE_SIZE + 1,
      }),
    [filters, before],
  );
  const list = events.data ?? [];
  const shown = list.slice(0, PAGE_SIZE);
  const hasOlder = list.length > PAGE_SIZE;
  const pageNumber = cursorPages.pageNumber;
  const filtered = Object.values(filters).some((v) => v !== '');
  const badRange =
    filters.since !== '' &&
    filters.until !== '' &&
    (toIso(filters.since) ?? '') > (toIso(filters.until) ?? '');

  const set = (key: keyof Filters, value: string) => {
    setFilters((f) => ({ ...f, [key]: value }));
    cursorPages.reset();
  };
  const byLabel = (a: Choice, b: Choice) => a.label.localeCompare(b.label);
  const users = [...(names.data?.users ?? [])].map(([value, label]) => ({ value, label })).sort(byLabel);
  const workspaces = [...(names.data?.workspaces ?? [])]
    .map(([value, name]) => ({ value, label: `${name} (${value.slice(0, 8)})` }))
    .sort(byLabel);
  const choose = (key: 'actorId' | 'workspaceId' | 'action', label: string, choices: Choice[]) => (
    <SelectField
      id={`audit-${key}`}
      label={label}
      value={filters[key]}
      onChange={(value) => {
        set(key, value);
      }}
      choices={choices}
    />
  );

  return (
    <>
      <PageHeading title="Audit log" />
      <section aria-labelledby="audit-filters-heading" className="section">
        <div className="section__head">
          <h2 id="audit-filters-heading">Filters</h2>
          <button
            type="button"
            disabled={!filtered}
            onClick={() => {
              setFilters(NO_FILTERS);
              cursorPages.reset();
            }}
          >
            Clear filters
          </button>
        </div>
        <form
          className="card form-grid"
          aria-labelledby="audit-filters-heading"
          onSubmit={(e) => {
            e.preventDefault();
          }}
        >
          {choose('actorId', 'User', [{ value: '', label: 'Any user' }, ...users])}
          {choose('workspaceId', 'Workspace', [{ value: '', label: 'Any workspace' }, ...workspaces])}
          {choose('action', 'Action', [{ value: '', label: 'Any action' }, ...ACTIONS])}
          <TextField
            id="audit-since"
            label="From"
            type="datetime-local"
            value={filters.since}
            onChange={(value) => {
              set('since', value);
            }}
          />
          <TextField
            id="audit-until"
            label="To"
            type="datetime-local"
            value={filters.until}
            onChange={(value) => {
              set('until', value);
            }}
            hint="Times are in your time zone."
            error={badRange ? '“To” is before “From”: nothing can match.' : undefined}
          />
        </form>
        {names.error !== undefined && (
          <ErrorState
            what="the names of users, workspaces and PCs"
            error={names.error}
            retry={names.reload}
          />
        )}
      </section>

      <section aria-labelledby="audit-heading" className="section">
        <h2 id="audit-heading">Events, newest first</h2>
        {events.data === undefined ? (
          <Pending state={events} what="the audit log" />
        ) : shown.length === 0 ? (
          <Empty>
            {pageNumber > 1
              ? 'No older events.'
              : filtered
                ? 'No event matches these filters.'
                : 'Nothing has been recorded yet.'}
          </Empty>
        ) : (
          <>
            {events.error !== undefined && (
              <ErrorState what="the latest events" error={events.error} retry={events.reload} />
            )}
            <TableScroll label="Audit events (scrollable)">
              <table aria-label="Audit events" className="data-table" aria-busy={events.loading}>
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Actor</th>
                    <th scope="col">Action</th>
                    <th scope="col">Workspace</th>
                    <th scope="col">Details</th>
                  </tr>
                </thead>
                <tbody>
                  {shown.map((event) => (
                    <AuditRow key={event.id} event={event} names={names.data} />
                  ))}
                </tbody>
              </table>
            </TableScroll>
            <CursorPager
              label="Pages of audit events"
              pages={cursorPages}
              hasOlder={hasOlder}
              oldest={shown.length > 0 ? Number(shown[shown.length - 1]?.id) : undefined}
            >
              Page {pageNumber} · {pageNumber === 1 ? 'newest events' : 'older events'}
            </CursorPager>
          </>
        )}
      </section>
    </>
  );
}

function AuditRow({ event, names }: { event: AuditEvent; names: Names | undefined }) {
  const actor = event.actorId === null ? undefined : (names?.users.get(event.actorId) ?? 'deleted user');
  const workspace =
    event.workspaceId === null
      ? undefined
      : (names?.workspaces.get(event.workspaceId) ?? 'deleted workspace');
  return (
    <tr>
      <td>
        <DateTime iso={event.at} />
      </td>
      <td>
        {actor ?? (
          <span className="muted" title="Nobody was signed in: a sign-in, or the server itself">
            —
          </span>
        )}
      </td>
      <td>
        <code>{event.action}</code>
      </td>
      <td>
        {event.workspaceId === null || workspace === undefined ? (
          <span className="muted">—</span>
        ) : (
          <Link to={`/workspaces/${event.workspaceId}`}>{workspace}</Link>
        )}
      </td>
      <td className="wrap">{describe(event, names)}</td>
    </tr>
  );
}

/** The event's target and details as a line for people: ids turned into names where known. */
function describe(event: AuditEvent, names: Names | undefined): string {
  const parts: string[] = [];
  if (event.targetId !== null && event.targetType !== 'lease' && event.targetType !== 'workspace') {
    const name =
      event.targetType === 'user'
        ? names?.users.get(event.targetId)
        : event.targetType === 'device'
          ? names?.devices.get(event.targetId)
          : undefined;
    parts.push(`${event.targetType} ${name ?? event.targetId.slice(0, 8)}`);
  }
  for (const [key, value] of Object.entries(event.details)) {
    if (value === null || value === undefined) continue;
    if (key === 'deviceId' && typeof value === 'string') {
      parts.push(`PC ${names?.devices.get(value) ?? value.slice(0, 8)}`);
    } else if (key === 'previousHolder' && typeof value === 'object' && 'deviceName' in value) {
      const holder = value as { deviceName: unknown; username?: unknown };
      const user = typeof holder.username === 'string' ? ` (${holder.username})` : '';
      parts.push(`previous holder ${String(holder.deviceName)}${user}`);
    } else if (typeof value === 'string' && UUID.test(value)) {
      parts.push(`${key} ${value.slice(0, 8)}`);
    } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      parts.push(`${key} ${String(value)}`);
    } else {
      parts.push(`${key} ${JSON.stringify(value)}`);
    }
  }
  if (event.address) parts.push(`from ${event.address}`);
  return parts.length === 0 ? '—' : parts.join(' · ');
}
