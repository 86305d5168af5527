/** The agent's exit codes: a contract for scripts (documented in apps/agent/README.md). */
export const EXIT = {
  ok: 0,
  /** Something failed; the message says what. */
  failed: 1,
  /** The command line is wrong. */
  usage: 2,
  /** Wrong credentials, or not allowed. */
  denied: 3,
  /** The server cannot be reached. */
  unreachable: 4,
  /** The workspace is in use on another PC (`--take-over` takes it). */
  inUse: 5,
} as const;

/** A failure meant for the person at the keyboard: a plain message and an exit code, no stack. */
export class AgentError extends Error {
  override name = 'AgentError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
  }
}
