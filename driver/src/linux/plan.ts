import { z } from 'zod';

/**
 * What the session builder does, worked out by the agent beforehand (see `session.ts`) and handed
 * to the builder as JSON: no decision is left to the privileged process.
 */
export const SessionPlan = z.object({
  /** The native helper (`upc-ns`). */
  helper: z.string(),
  /** Ids 0..idCount-1 of the session are idBase.. outside: its own range on this PC. */
  idBase: z.number().int().positive(),
  idCount: z.number().int().positive(),
  hostname: z.string().min(1).max(64),
  /** The session's folder on the host: `workspace/` (the layers) and `overlay/` (work folders). */
  sessionDir: z.string(),
  /** An empty folder of the session's where the builder attaches its staging mounts. */
  stageDir: z.string(),
  /** The saved layers, outermost first: `dir` is relative to `sessionDir`. */
  layers: z.array(
    z.object({
      kind: z.enum(['forward', 'cow']),
      target: z.string(),
      dir: z.string(),
      /** cow only: the overlay's work folder, relative to `sessionDir`. */
      work: z.string().optional(),
    }),
  ),
  /** Folders that start empty (tmpfs). */
  ephemeral: z.array(z.string()),
  /** Paths passed through as they are (their mounts keep their flags). */
  host: z.array(z.string()),
  /**
   * A folder whose host content is replaced by an empty one holding just the mount points the plan
   * needs (for `/home`: other people's home folders are not the session's business).
   */
  scaffolds: z.array(z.object({ target: z.string(), mountPoints: z.array(z.string()) })),
  /** Host secrets hidden from the session; a `*` in the last part of a path matches names. */
  masks: z.array(z.string()),
});
export type SessionPlan = z.infer<typeof SessionPlan>;

/** What the builder reports on its stdout (one JSON line). */
export const BuildReport = z.object({
  /** The session's init (pid 1 of its PID namespace), as the host numbers it. */
  init: z.number().int().positive(),
  /** Rules that could not be applied on this host (a missing folder), each with its reason. */
  warnings: z.array(z.string()),
  ms: z.number(),
});
export type BuildReport = z.infer<typeof BuildReport>;
