import { api } from '../api.js';
import { ServerListSection, useServerList } from '../components/list.js';
import { TableScroll } from '../components/states.js';
import { RelativeTime, WorkspaceSize } from '../components/time.js';
import type { LiveSessions } from '../events.js';
import { Link } from '../router.js';
import { PageHeading } from './PageHeading.js';

const PAGE_SIZE = 20;

/** Every workspace (admins): owner, size, last activity and who holds its lease now. */
export function Workspaces({ live }: { live: LiveSessions }) {
  const list = useServerList((query) => api.listWorkspacesPage(query), PAGE_SIZE);
  const holders = new Map((live.sessions ?? []).map((s) => [s.workspace.id, s]));

  return (
    <>
      <PageHeading title="Workspaces" />
      <ServerListSection
        id="workspaces"
        title="All workspaces"
        list={list}
        what="workspaces"
        one="workspace"
        none="There are no workspaces yet. One is made the first time a user signs in on a uPC PC."
        noMatch="workspace or owner name"
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
              {(list.state.data?.items ?? []).map((w) => {
                const holder = holders.get(w.id);
                return (
                  <tr key={w.id}>
                    <td>
                      <Link to={`/workspaces/${w.id}`} aria-label={`${w.name} (${w.ownerName})`}>
                        {w.name}
                      </Link>
                    </td>
                    <td>{w.ownerName}</td>
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
      </ServerListSection>
    </>
  );
}
