/**
 * What the session builder does, worked out by the agent beforehand (see `session.ts`) and handed
 * to the builder as JSON: no decision is left to the privileged process. Checked by hand rather
 * than with a schema library: the builder starts on every login, and what it loads is login time.
 */
export interface SessionPlan {
  /** The native helper (`upc-ns`). */
  helper: string;
  /** Ids 0..idCount-1 of the session are idBase.. outside: its own range on this PC. */
  idBase: number;
  idCount: number;
  hostname: string;
  /** The session's folder on the host: `workspace/` (the layers) and `overlay/` (work folders). */
  sessionDir: string;
  /** An empty folder where the builder attaches its staging mounts, outside every rule's path. */
  stageDir: string;
  /** The saved layers: `dir` and `work` (cow: the overlay's work folder) relative to `sessionDir`. */
  layers: { kind: 'forward' | 'cow'; target: string; dir: string; work?: string }[];
  /** Folders that start empty (tmpfs). */
  ephemeral: string[];
  /** Paths passed through from the host, read-only unless in `writable`. */
  host: string[];
  /** Host paths whose mounts keep their flags (the PC lets sessions write there). */
  writable: string[];
  /**
   * A folder whose host content is replaced by an empty one holding just the mount points the plan
   * needs (for `/home`: other people's home folders are not the session's business).
   */
  scaffolds: { target: string; mountPoints: string[] }[];
  /** Host secrets hidden from the session; a `*` in the last part of a path matches names. */
  masks: string[];
}

/** What the builder reports on its stdout (one JSON line). */
export interface BuildReport {
  /** The session's init (pid 1 of its PID namespace), as the host numbers it. */
  init: number;
  /** Rules that could not be applied on this host (a missing folder), each with its reason. */
  warnings: string[];
  ms: number;
}

export class PlanError extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isAbsolute = (v: unknown): v is string =>
  typeof v === 'string' && v.startsWith('/') && !v.includes('\0') && !v.split('/').includes('..');
const isRelative = (v: unknown): v is string =>
  typeof v === 'string' &&
  v !== '' &&
  !v.startsWith('/') &&
  !v.includes('\0') &&
  !v.split('/').includes('..');
const isId = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) < 2 ** 32;
const paths = (v: unknown): v is string[] => Array.isArray(v) && v.every(isAbsolute);

/** The plan, if `value` is one: absolute paths without `..`, ids in range, known layer kinds. */
export function parsePlan(value: unknown): SessionPlan {
  const fail = (what: string): never => {
    throw new PlanError(`bad session plan: ${what}`);
  };
  if (!isObject(value)) return fail('not an object');
  const v = value;
  if (!isAbsolute(v.helper) || !isAbsolute(v.sessionDir) || !isAbsolute(v.stageDir)) fail('paths');
  if (!isId(v.idBase) || !isId(v.idCount)) fail('ids');
  if (typeof v.hostname !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(v.hostname))
    fail('hostname');
  if (!paths(v.ephemeral) || !paths(v.host) || !paths(v.writable) || !paths(v.masks)) fail('path lists');
  const layers = Array.isArray(v.layers) ? v.layers : fail('layers');
  for (const layer of layers) {
    if (!isObject(layer) || (layer.kind !== 'forward' && layer.kind !== 'cow')) fail('layer kind');
    const l = layer as Record<string, unknown>;
    if (!isAbsolute(l.target) || !isRelative(l.dir)) fail('layer paths');
    if (l.kind === 'cow' && !isRelative(l.work)) fail('cow work folder');
  }
  const scaffolds = Array.isArray(v.scaffolds) ? v.scaffolds : fail('scaffolds');
  for (const s of scaffolds) {
    if (!isObject(s) || !isAbsolute(s.target) || !paths(s.mountPoints)) fail('scaffold');
  }
  return value as unknown as SessionPlan;
}

/** The builder's first line: loaded, it waits for the plan on its standard input. */
export const READY_LINE = 'ready';

/** The builder's report, if `value` is one. */
export function parseReport(value: unknown): BuildReport {
  if (
    !isObject(value) ||
    !isId(value.init) ||
    !Array.isArray(value.warnings) ||
    !value.warnings.every((w) => typeof w === 'string') ||
    typeof value.ms !== 'number'
  ) {
    throw new PlanError('bad build report');
  }
  return value as unknown as BuildReport;
}
