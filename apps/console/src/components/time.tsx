import { formatBytes, formatDateTime, formatExactTime, formatNumber, formatRelativeTime } from '../format.js';
import { useNow } from '../hooks.js';

/** "3 min ago", with the exact time in its title; kept current. */
export function RelativeTime({ iso }: { iso: string }) {
  const now = useNow();
  const date = new Date(iso);
  return (
    <time dateTime={iso} title={formatExactTime(date)}>
      {formatRelativeTime(date, now)}
    </time>
  );
}

/** "1.5 GiB", with the exact count of bytes in its title. */
export function Bytes({ value }: { value: number }) {
  return <span title={`${formatNumber(value)} bytes`}>{formatBytes(value)}</span>;
}

/** The exact date and time ("27 Nov 2026, 14:21:45"), with how long ago in its title. */
export function DateTime({ iso }: { iso: string }) {
  const now = useNow();
  const date = new Date(iso);
  return (
    <time dateTime={iso} title={`${formatRelativeTime(date, now)} · ${formatExactTime(date)}`}>
      {formatDateTime(date)}
    </time>
  );
}

/** A workspace's stored size, and its quota when it has one. */
export function WorkspaceSize({ stored, quota }: { stored: number; quota: number | null }) {
  return (
    <>
      <Bytes value={stored} />
      {quota !== null && (
        <span className="muted">
          {' '}
          of <Bytes value={quota} />
        </span>
      )}
    </>
  );
}
