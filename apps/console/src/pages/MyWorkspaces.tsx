import type { User } from '@upc/protocol';
import { api } from '../api.js';
import { ServerListPager, useServerList } from '../components/list.js';
import { LiveIndicator, SessionsTable } from '../components/sessions.js';
import { Empty, Pending, TableScroll } from '../components/states.js';
import { RelativeTime, WorkspaceSize } from '../components/time.js';
import type { LiveSessions } from '../events.js';
import { Link } from '../router.js';
import { PageHeading } from './PageHeading.js';

const PAGE_SIZE = 20;

/** What a user who is not an admin sees: their own workspaces and their own live sessions. */
export function MyWorkspaces({ me, live }: { me: User; live: LiveSessions }) {
  // Paged like the admin's lists (by the server, which gives a user only their own), with no search box.
  const workspaces = useServerList(
    (query) => api.listWorkspacesPage({ ...query, ownerId: me.id }),
    PAGE_SIZE,
  );
  const list = workspaces.state.data?.items;
  const mine = live.sessions?.filter((s) => s.user.id === me.id);
  return (
    <>
      <PageHeading title="My workspaces" />
      <section aria-labelledby="my-workspaces-heading" className="section">
        <h2 id="my-workspaces-heading" className="visually-hidden">
          Workspaces
        </h2>
        {list === undefined ? (
          <Pending state={workspaces.state} what="your workspaces" />
        ) : list.length === 0 ? (
          <Empty>You have no workspaces yet. One is made the first time you sign in on a uPC PC.</Empty>
        ) : (
          <>
            <TableScroll label="My workspaces (scrollable)">
              <table aria-label="My workspaces" className="data-table">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col" className="num">
                      Size
                    </th>
                    <th scope="col">Last activity</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((w) => (
                    <tr key={w.id}>
                      <td>
                        <Link to={`/workspaces/${w.id}`}>{w.name}</Link>
                      </td>
                      <td className="num">
                        <WorkspaceSize stored={w.storedBytes} quota={w.quotaBytes} />
                      </td>
                      <td>
                        <RelativeTime iso={w.updatedAt} />
                      </td>
                      <td>
                        <RelativeTime iso={w.createdAt} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableScroll>
            {workspaces.pages > 1 && (
              <ServerListPager
                label="Pages of your workspaces"
                list={workspaces}
                one="workspace"
                many="workspaces"
              />
            )}
          </>
        )}
      </section>

      <section aria-labelledby="my-sessions-heading" className="section">
        <div className="section__head">
          <h2 id="my-sessions-heading">My active sessions</h2>
          <LiveIndicator status={live.status} />
        </div>
        <SessionsTable
          label="My active sessions"
          sessions={mine}
          status={live.status}
          emptyText="You are not signed in on any PC right now."
        />
      </section>
    </>
  );
}
