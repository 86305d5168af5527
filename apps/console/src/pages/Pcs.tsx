import { api } from '../api.js';
import { ServerListSection, useServerList } from '../components/list.js';
import { TableScroll } from '../components/states.js';
import { RelativeTime } from '../components/time.js';
import type { LiveSessions } from '../events.js';
import { useNow } from '../hooks.js';
import { Link } from '../router.js';
import { PageHeading } from './PageHeading.js';

const PAGE_SIZE = 20;
/** A PC heard from within this long has its agent running (agents send a heartbeat every 30 s). */
export const AGENT_ALIVE_MS = 2 * 60_000;

/** What a PC is doing: a session runs on it, its agent runs without one, or it is not heard from. */
type PcStatus = 'In session' | 'Idle' | 'Offline';

const BADGE: Record<PcStatus, string> = {
  'In session': 'badge--on',
  Idle: 'badge--idle',
  Offline: 'badge--idle',
};

/** Every PC (admins): its status, last seen, its current session, owner, OS and agent. */
export function Pcs({ live }: { live: LiveSessions }) {
  const list = useServerList((query) => api.listDevicesPage(query), PAGE_SIZE, 30_000);
  const now = useNow();

  const sessions = new Map((live.sessions ?? []).map((s) => [s.device.id, s]));
  const rows = (list.state.data?.items ?? []).map((d) => {
    const session = sessions.get(d.id);
    const lastSeen = session && session.lastSeenAt > d.lastSeenAt ? session.lastSeenAt : d.lastSeenAt;
    const status: PcStatus =
      session !== undefined ? 'In session' : now - Date.parse(lastSeen) < AGENT_ALIVE_MS ? 'Idle' : 'Offline';
    return { device: d, session, lastSeen, status };
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
              {rows.map(({ device, session, lastSeen, status }) => (
                <tr key={device.id}>
                  <td>{device.name}</td>
                  <td>
                    <span className={`badge ${BADGE[status]}`}>{status}</span>
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
                  <td>{device.ownerName}</td>
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
