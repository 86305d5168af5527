import { api } from '../api.js';
import { ActivityChart, StorageChart } from '../components/charts.js';
import { LiveIndicator, SessionsTable } from '../components/sessions.js';
import { Pending } from '../components/states.js';
import { Bytes } from '../components/time.js';
import type { LiveSessions } from '../events.js';
import { formatNumber } from '../format.js';
import { useAsync } from '../hooks.js';
import { PageHeading } from './PageHeading.js';

export function Overview({ live }: { live: LiveSessions }) {
  // Totals and charts follow the sessions: a login, a sync or a logout changes them.
  const activity = (live.sessions ?? [])
    .map((session) => `${session.workspace.id}:${session.lastSync ?? ''}`)
    .join(',');
  const stats = useAsync(() => api.stats(), [activity], 60_000);
  const s = stats.data;
  return (
    <>
      <PageHeading title="Overview" />

      <section aria-labelledby="sessions-heading" className="section">
        <div className="section__head">
          <h2 id="sessions-heading">Active sessions</h2>
          <LiveIndicator status={live.status} />
        </div>
        <SessionsTable
          label="Active sessions"
          sessions={live.sessions}
          status={live.status}
          emptyText="No one is signed in on a PC right now."
        />
      </section>

      <section aria-labelledby="totals-heading" className="section">
        <h2 id="totals-heading">Totals</h2>
        {s === undefined ? (
          <Pending state={stats} what="the totals" />
        ) : (
          <dl className="cards">
            <div className="card stat">
              <dt>Users</dt>
              <dd>{formatNumber(s.users)}</dd>
            </div>
            <div className="card stat">
              <dt>Workspaces</dt>
              <dd>{formatNumber(s.workspaces)}</dd>
            </div>
            <div className="card stat">
              <dt>Storage used</dt>
              <dd>
                <Bytes value={s.storageBytes} />
              </dd>
            </div>
            <div className="card stat">
              <dt>Versions today</dt>
              <dd>{formatNumber(s.versionsToday)}</dd>
            </div>
          </dl>
        )}
      </section>

      <section aria-labelledby="charts-heading" className="section">
        <h2 id="charts-heading">Activity</h2>
        {s === undefined ? (
          <Pending state={stats} what="the charts" />
        ) : (
          <div className="charts">
            <div className="card">
              <ActivityChart activity={s.activity} />
            </div>
            <div className="card">
              <StorageChart storage={s.storage} />
            </div>
          </div>
        )}
      </section>
    </>
  );
}
