import type { Stats } from '@upc/protocol';
import { useId, type ReactNode } from 'react';
import { formatBytes, formatNumber } from '../format.js';

/** Inline SVG charts; each has a text summary (its accessible name) and its numbers as a table. */

const W = 600;
const H = 200;
const PAD = { top: 12, right: 12, bottom: 26, left: 64 };
const PLOT_W = W - PAD.left - PAD.right;
const PLOT_H = H - PAD.top - PAD.bottom;

/** 1, 2 or 5 times a power of ten, at least `value` (1 for 0). */
function niceCount(value: number): number {
  if (value <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** 2, 4 or 10 times a power of ten, at least `value`: an axis whose half-way mark is a whole number. */
function niceEvenCount(value: number): number {
  for (let power = 1; ; power *= 10) {
    for (const step of [2, 4, 10]) if (step * power >= value) return step * power;
  }
}

/** A round number of bytes (1, 2 or 5 times a power of ten, in the fitting binary unit), at least `value`. */
function niceBytes(value: number): number {
  if (value <= 1024) return 1024;
  const unit = 1024 ** Math.floor(Math.log(value) / Math.log(1024));
  return niceCount(value / unit) * unit;
}

function hourLabel(iso: string): string {
  return new Date(iso).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
}

function dayLabel(day: string): string {
  return new Date(`${day}T00:00:00Z`).toLocaleDateString('en-GB', {
    day: 'numeric',
    month: 'short',
    timeZone: 'UTC',
  });
}

function Axis({ max, format }: { max: number; format: (value: number) => string }) {
  return (
    <g className="chart__axis">
      {[0, 0.5, 1].map((f) => {
        const y = PAD.top + PLOT_H * (1 - f);
        return (
          <g key={f}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y} y2={y} className="chart__grid" />
            <text x={PAD.left - 8} y={y} dy="0.32em" textAnchor="end">
              {format(max * f)}
            </text>
          </g>
        );
      })}
    </g>
  );
}

function ChartFigure({
  title,
  summary,
  svg,
  columns,
  rows,
}: {
  title: string;
  summary: string;
  svg: ReactNode;
  columns: [string, string];
  rows: [string, string][];
}) {
  const captionId = useId();
  return (
    <figure className="chart" aria-labelledby={captionId}>
      <figcaption id={captionId}>
        <span className="chart__title">{title}</span>
        <span className="chart__summary">{summary}</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}. ${summary}`} className="chart__svg">
        {svg}
      </svg>
      <details className="chart__data">
        <summary>Show the numbers</summary>
        <div className="table-scroll">
          <table aria-label={`${title}: the numbers`}>
            <thead>
              <tr>
                <th scope="col">{columns[0]}</th>
                <th scope="col">{columns[1]}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(([a, b]) => (
                <tr key={a}>
                  <th scope="row">{a}</th>
                  <td>{b}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}

/** Versions committed per hour, the last 24 hours, as bars. */
export function ActivityChart({ activity }: { activity: Stats['activity'] }) {
  const total = activity.reduce((sum, a) => sum + a.versions, 0);
  const busiest = activity.reduce<Stats['activity'][number] | undefined>(
    (best, a) => (best === undefined || a.versions > best.versions ? a : best),
    undefined,
  );
  const summary =
    total === 0 || !busiest
      ? 'No versions in the last 24 hours.'
      : `${formatNumber(total)} ${total === 1 ? 'version' : 'versions'} in the last 24 hours; the busiest hour began at ${hourLabel(busiest.hour)}, with ${formatNumber(busiest.versions)}.`;
  const max = niceEvenCount(busiest?.versions ?? 0);
  const slot = PLOT_W / Math.max(1, activity.length);
  return (
    <ChartFigure
      title="Sync activity: versions per hour"
      summary={summary}
      columns={['Hour', 'Versions']}
      rows={activity.map((a) => [hourLabel(a.hour), formatNumber(a.versions)])}
      svg={
        <>
          <Axis max={max} format={(v) => formatNumber(Math.round(v))} />
          {activity.map((a, i) => {
            const h = (a.versions / max) * PLOT_H;
            const x = PAD.left + i * slot;
            return (
              <g key={a.hour}>
                <rect
                  className="chart__bar"
                  x={x + slot * 0.15}
                  y={PAD.top + PLOT_H - h}
                  width={slot * 0.7}
                  height={Math.max(h, a.versions > 0 ? 1 : 0)}
                >
                  <title>{`${hourLabel(a.hour)}: ${formatNumber(a.versions)} versions`}</title>
                </rect>
                {i % 6 === 0 && (
                  <text className="chart__label" x={x + slot / 2} y={H - 8} textAnchor="middle">
                    {hourLabel(a.hour)}
                  </text>
                )}
              </g>
            );
          })}
        </>
      }
    />
  );
}

/** Bytes stored at the end of each of the last 30 days, as a line. */
export function StorageChart({ storage }: { storage: Stats['storage'] }) {
  const first = storage[0];
  const last = storage[storage.length - 1];
  const peak = storage.reduce<Stats['storage'][number] | undefined>(
    (best, s) => (best === undefined || s.bytes > best.bytes ? s : best),
    undefined,
  );
  const summary =
    !first || !last || !peak
      ? 'No storage figures yet.'
      : peak.bytes === 0
        ? 'Nothing was stored in the last 30 days.'
        : `From ${formatBytes(first.bytes)} on ${dayLabel(first.day)} to ${formatBytes(last.bytes)} on ${dayLabel(last.day)}; the most was ${formatBytes(peak.bytes)}, on ${dayLabel(peak.day)}.`;
  const max = niceBytes(peak?.bytes ?? 0);
  const step = PLOT_W / Math.max(1, storage.length - 1);
  const points = storage.map((s, i) => ({
    x: PAD.left + i * step,
    y: PAD.top + PLOT_H * (1 - s.bytes / max),
    s,
  }));
  const line = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
  const base = PAD.top + PLOT_H;
  const area =
    points.length > 0
      ? `${line} L${(points[points.length - 1]?.x ?? 0).toFixed(1)},${base} L${PAD.left},${base} Z`
      : '';
  const labelled = new Set([0, Math.floor((storage.length - 1) / 2), storage.length - 1]);
  return (
    <ChartFigure
      title="Storage used, last 30 days"
      summary={summary}
      columns={['Day (UTC)', 'Stored']}
      rows={storage.map((s) => [dayLabel(s.day), formatBytes(s.bytes)])}
      svg={
        <>
          <Axis max={max} format={formatBytes} />
          <path className="chart__area" d={area} />
          <path className="chart__line" d={line} />
          {points.map((p, i) => (
            <g key={p.s.day}>
              <circle className="chart__point" cx={p.x} cy={p.y} r={3}>
                <title>{`${dayLabel(p.s.day)}: ${formatBytes(p.s.bytes)}`}</title>
              </circle>
              {labelled.has(i) && (
                <text
                  className="chart__label"
                  x={p.x}
                  y={H - 8}
                  textAnchor={i === 0 ? 'start' : i === storage.length - 1 ? 'end' : 'middle'}
                >
                  {dayLabel(p.s.day)}
                </text>
              )}
            </g>
          ))}
        </>
      }
    />
  );
}
