import { api } from '../api.js';
import { ServerListSection, useServerList, useUsernames } from '../components/list.js';
import { TableScroll } from '../components/states.js';
import { RelativeTime } from '../components/time.js';
import type { LiveSessions } from '../events.js';
import { useNow } from '../hooks.js';
import { Link } from '../router.js';
import { PageHeading } from './PageHeading.js';

const PAGE_SIZE = 20;
/** A PC heard from within this long is online (agents send a heartbeat every 30 s). */
export const ONLINE_MS = 2 * 60_000;

/** Every PC (admins): online or not, last seen, its current session, OS and agent. */
export function Pcs({ live }: { live: LiveSessions }) {
  const list = useServerList((query) => api.listDevicesPage(query), PAGE_SIZE, 30_000);
  const ownerName = useUsernames();
  const now = useNow();

  const sessions = new Map((live.sessions ?? []).map((s) => [s.device.id, s]));
  const rows = (list.state.data?.items ?? []).map((d) => {
    const session = sessions.get(d.id);
    const lastSeen = session && session.lastSeenAt > d.lastSeenAt ? session.lastSeenAt : d.lastSeenAt;
    const online = session !== undefined || now - Date.parse(lastSeen) < ONLINE_MS;
    const owner = ownerName(d.ownerId);
    return { device: d, owner, session, lastSeen, online };
  });

  return (
    <>
      <PageHeading title="PCs" />
      <ServerListSection
        id="pcs"
        title="All PCs"
        list={list}
        what="PCs"
        one="PC"
        none="No PC has signed in yet. A PC appears here the first time someone signs in on it."
        noMatch="PC’s name, owner or OS"
      >
        <TableScroll label="PCs (scrollable)">
          <table aria-label="PCs" className="data-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Current session</th>
                <th scope="col">Last seen</th>
                <th scope="col">Owner</th>
                <th scope="col">OS</th>
                <th scope="col">Agent</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(({ device, owner, session, lastSeen, online }) => (
                <tr key={device.id}>
                  <td>{device.name}</td>
                  <td>
                    <span className={`badge ${online ? 'badge--on' : 'badge--idle'}`}>
                      {online ? 'Online' : 'Offline'}
                    </span>
                  </td>
                  <td>
                    {session ? (
                      <>
                        <Link to={`/workspaces/${session.workspace.id}`}>{session.workspace.name}</Link>{' '}
                        <span className="muted">({session.user.username})</span>
                      </>
                    ) : (
                      <span className="muted">none</span>
                    )}
                  </td>
                  <td>
                    <RelativeTime iso={lastSeen} />
                  </td>
                  <td>{owner}</td>
                  <td>{device.os}</td>
                  <td>{device.agentVersion}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      </ServerListSection>
    </>
  );
}
