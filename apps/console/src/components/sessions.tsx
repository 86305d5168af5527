import type { LiveSession } from '@upc/protocol';
import type { StreamStatus } from '../events.js';
import { useNow } from '../hooks.js';
import { Bytes, RelativeTime } from './time.js';
import { TableScroll } from './states.js';

/** The live-updates indicator: "Live" with a green dot while the event stream is connected. */
export function LiveIndicator({ status }: { status: StreamStatus }) {
  const now = useNow();
  let text: string;
  switch (status.state) {
    case 'live':
      text = 'Live';
      break;
    case 'connecting':
      text = 'Connecting…';
      break;
    case 'reconnecting': {
      const seconds = Math.max(0, Math.round((status.at - now) / 1000));
      text = seconds > 15 ? `Offline, retrying in ${seconds} s` : 'Offline, reconnecting…';
      break;
    }
    case 'closed':
      text = `Live updates off: ${status.reason}`;
      break;
  }
  return (
    <p
      className={`live live--${status.state}`}
      role="status"
      data-testid="live-indicator"
      data-state={status.state}
      title={status.state === 'reconnecting' ? status.reason : undefined}
    >
      <span className="live__dot" aria-hidden="true" />
      {text}
    </p>
  );
}

/** The sessions table; its rows change in place as events arrive. */
export function SessionsTable({
  label,
  sessions,
  status,
  emptyText,
}: {
  label: string;
  sessions: LiveSession[] | undefined;
  status: StreamStatus;
  emptyText: string;
}) {
  let stateRow: string | undefined;
  if (sessions === undefined) {
    stateRow =
      status.state === 'closed'
        ? `Live sessions are not available (${status.reason}).`
        : status.state === 'reconnecting'
          ? 'Cannot reach the server; trying again…'
          : 'Loading sessions…';
  } else if (sessions.length === 0) stateRow = emptyText;
  return (
    <TableScroll label={`${label} (scrollable)`}>
      <table aria-label={label} className="data-table" aria-busy={sessions === undefined}>
        <thead>
          <tr>
            <th scope="col">User</th>
            <th scope="col">Workspace</th>
            <th scope="col">PC</th>
            <th scope="col">State</th>
            <th scope="col">Since</th>
            <th scope="col">Last sync</th>
            <th scope="col" className="num">
              Pending
            </th>
          </tr>
        </thead>
        <tbody>
          {stateRow !== undefined ? (
            <tr>
              <td colSpan={7} className="table-state">
                {stateRow}
              </td>
            </tr>
          ) : (
            sessions?.map((s) => (
              <tr key={`${s.workspace.id}/${s.device.id}`}>
                <td>{s.user.username}</td>
                <td>{s.workspace.name}</td>
                <td>{s.device.name}</td>
                <td>{s.state ?? '—'}</td>
                <td>
                  <RelativeTime iso={s.since} />
                </td>
                <td>{s.lastSync ? <RelativeTime iso={s.lastSync} /> : 'not yet'}</td>
                <td className="num">
                  {s.pendingBytes === null ? (
                    <span title="The PC has not reported it">—</span>
                  ) : (
                    <Bytes value={s.pendingBytes} />
                  )}
                </td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </TableScroll>
  );
}
