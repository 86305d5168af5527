/** Formatting of numbers, sizes and times for people. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** 0 B, 512 B, 1.5 KiB, 12 KiB, 3.4 GiB: binary units, about three significant digits. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || Math.abs(value) >= 10 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit] ?? 'B'}`;
}

const integer = new Intl.NumberFormat('en-US');

/** 1,234,567 */
export function formatNumber(value: number): string {
  return integer.format(value);
}

/** The exact time, for a title attribute: "27 Nov 2026, 14:21:45 UTC+1". */
export function formatExactTime(date: Date): string {
  return date.toLocaleString('en-GB', {
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    timeZoneName: 'short',
  });
}

/** A date without a time: "27 Nov 2026". */
export function formatDate(date: Date): string {
  return date.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' });
}

/** "just now", "3 min ago", "5 h ago", "2 days ago", "in 4 min"; older than 30 days: the date. */
export function formatRelativeTime(date: Date, now: number = Date.now()): string {
  const seconds = Math.round((now - date.getTime()) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  if (s < 45) return 'just now';
  let text: string;
  if (s < 60 * 60) text = `${Math.max(1, Math.round(s / 60))} min`;
  else if (s < 24 * 60 * 60) text = `${Math.round(s / 3600)} h`;
  else if (s < 30 * 24 * 60 * 60) {
    const days = Math.round(s / 86400);
    text = `${days} ${days === 1 ? 'day' : 'days'}`;
  } else return formatDate(date);
  return future ? `in ${text}` : `${text} ago`;
}

/** A date and time to the second, for lists of events: "27 Nov 2026, 14:21:45". */
export function formatDateTime(date: Date): string {
  return date.toLocaleString('en-GB', {
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** A change in bytes with its sign: "+1.5 KiB", "−200 B", "no change". */
export function formatByteChange(delta: number): string {
  if (delta === 0) return 'no change';
  return `${delta > 0 ? '+' : '−'}${formatBytes(Math.abs(delta))}`;
}
