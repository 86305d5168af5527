import { useState } from 'react';
import { api } from '../api.js';
import { ListPager, ListSection } from '../components/list.js';
import { pageOf } from '../components/pager.js';
import { TableScroll } from '../components/states.js';
import { RelativeTime, WorkspaceSize } from '../components/time.js';
import type { LiveSessions } from '../events.js';
import { formatNumber } from '../format.js';
import { useAsync } from '../hooks.js';
import { Link } from '../router.js';
import { PageHeading } from './PageHeading.js';

const PAGE_SIZE = 20;

/** Every workspace (admins): owner, size, last activity and who holds its lease now. */
export function Workspaces({ live }: { live: LiveSessions }) {
  const data = useAsync(async () => {
    const [workspaces, users] = await Promise.all([api.listWorkspaces(), api.listUsers()]);
    return { workspaces, owners: new Map(users.map((u) => [u.id, u.username])) };
  }, []);
  const [query, setQuery] = useState('');
  const [page, setPage] = useState(1);

  const all = data.data?.workspaces ?? [];
  const owners = data.data?.owners ?? new Map<string, string>();
  const holders = new Map((live.sessions ?? []).map((s) => [s.workspace.id, s]));
  const needle = query.trim().toLowerCase();
  const matching = needle
    ? all.filter(
        (w) =>
          w.name.toLowerCase().includes(needle) ||
          (owners.get(w.ownerId) ?? '').toLowerCase().includes(needle),
      )
    : all;
  const sorted = [...matching].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
  const { shown, current, pages } = pageOf(sorted, page, PAGE_SIZE);

  return (
    <>
      <PageHeading title="Workspaces" />
      <ListSection
        id="workspaces"
        title="All workspaces"
        search={{
          label: 'Search workspaces',
          value: query,
          onChange: (value) => {
            setQuery(value);
            setPage(1);
          },
        }}
        state={data}
        what="workspaces"
        empty={
          matching.length === 0
            ? all.length === 0
              ? 'There are no workspaces yet. One is made the first time a user signs in on a uPC PC.'
              : `No workspace or owner name contains “${query.trim()}”.`
            : null
        }
      >
        <TableScroll label="Workspaces (scrollable)">
          <table aria-label="Workspaces" className="data-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Owner</th>
                <th scope="col" className="num">
                  Size
                </th>
                <th scope="col">Last activity</th>
                <th scope="col">In use on</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((w) => {
                const holder = holders.get(w.id);
                const owner = owners.get(w.ownerId) ?? 'unknown user';
                return (
                  <tr key={w.id}>
                    <td>
                      <Link to={`/workspaces/${w.id}`} aria-label={`${w.name} (${owner})`}>
                        {w.name}
                      </Link>
                    </td>
                    <td>{owner}</td>
                    <td className="num">
                      <WorkspaceSize stored={w.storedBytes} quota={w.quotaBytes} />
                    </td>
                    <td>
                      <RelativeTime iso={w.updatedAt} />
                    </td>
                    <td>
                      {holder ? (
                        <>
                          {holder.device.name} <span className="muted">({holder.user.username})</span>
                        </>
                      ) : (
                        <span className="muted">not in use</span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableScroll>
        <ListPager label="Pages of workspaces" current={current} pages={pages} onPage={setPage}>
          Page {current} of {pages} · {formatNumber(matching.length)}{' '}
          {matching.length === 1 ? 'workspace' : 'workspaces'}
        </ListPager>
      </ListSection>
    </>
  );
}
