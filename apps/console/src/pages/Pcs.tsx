import { useState } from 'react';
import { api } from '../api.js';
import { ListPager, ListSection } from '../components/list.js';
import { pageOf } from '../components/pager.js';
import { TableScroll } from '../components/states.js';
import { RelativeTime } from '../components/time.js';
import type { LiveSessions } from '../events.js';
import { formatNumber } from '../format.js';
import { useAsync, useNow } from '../hooks.js';
import { Link } from '../router.js';
import { PageHeading } from './PageHeading.js';

const PAGE_SIZE = 20;
/** A PC heard from within this long is online (agents send a heartbeat every 30 s). */
export const ONLINE_MS = 2 * 60_000;

/** Every PC (admins): online or not, last seen, its current session, OS and agent. */
export function Pcs({ live }: { live: LiveSessions }) {
  const data = useAsync(
    async () => {
      const [devices, users] = await Promise.all([api.listDevices(), api.listUsers()]);
      return { devices, owners: new Map(users.map((u) => [u.id, u.username])) };
    },
    [],
    30_000,
  );
  const [query, setQuery] = useState('');
  const [page, setPage] = useState(1);
  const now = useNow();

  const all = data.data?.devices ?? [];
  const owners = data.data?.owners ?? new Map<string, string>();
  const sessions = new Map((live.sessions ?? []).map((s) => [s.device.id, s]));
  const needle = query.trim().toLowerCase();
  const rows = all
    .map((d) => {
      const session = sessions.get(d.id);
      const lastSeen = session && session.lastSeenAt > d.lastSeenAt ? session.lastSeenAt : d.lastSeenAt;
      const online = session !== undefined || now - Date.parse(lastSeen) < ONLINE_MS;
      return { device: d, owner: owners.get(d.ownerId) ?? 'unknown user', session, lastSeen, online };
    })
    .filter(
      (r) =>
        !needle || [r.device.name, r.owner, r.device.os].some((text) => text.toLowerCase().includes(needle)),
    )
    .sort((a, b) => Number(b.online) - Number(a.online) || b.lastSeen.localeCompare(a.lastSeen));
  const { shown, current, pages } = pageOf(rows, page, PAGE_SIZE);
  const onlineCount = rows.filter((r) => r.online).length;

  return (
    <>
      <PageHeading title="PCs" />
      <ListSection
        id="pcs"
        title="All PCs"
        search={{
          label: 'Search PCs',
          value: query,
          onChange: (value) => {
            setQuery(value);
            setPage(1);
          },
        }}
        state={data}
        what="PCs"
        empty={
          rows.length === 0
            ? all.length === 0
              ? 'No PC has signed in yet. A PC appears here the first time someone signs in on it.'
              : `No PC’s name, owner or OS contains “${query.trim()}”.`
            : null
        }
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
              {shown.map(({ device, owner, session, lastSeen, online }) => (
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
        <ListPager label="Pages of PCs" current={current} pages={pages} onPage={setPage}>
          Page {current} of {pages} · {formatNumber(rows.length)} {rows.length === 1 ? 'PC' : 'PCs'},{' '}
          {formatNumber(onlineCount)} online
        </ListPager>
      </ListSection>
    </>
  );
}
