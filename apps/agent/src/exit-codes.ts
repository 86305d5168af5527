import { ApiError } from '@upc/protocol';

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

/** The exit code a failure ends a command with. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof AgentError) return error.exitCode;
  if (error instanceof ApiError) {
    if (error.status === 401 || error.status === 403) return EXIT.denied;
    if ([502, 503, 504].includes(error.status)) return EXIT.unreachable;
    return EXIT.failed;
  }
  if (error instanceof TypeError && error.message === 'fetch failed') return EXIT.unreachable;
  return EXIT.failed;
}

/** A failure as the person at the PC should read it. */
export function messageOf(error: unknown): string {
  if (error instanceof TypeError && error.message === 'fetch failed') {
    const cause = error.cause as (Error & { code?: string }) | undefined;
    return `cannot reach the server (${cause?.code ?? cause?.message ?? 'no answer'}); check UPC_SERVER or --server`;
  }
  if (error instanceof ApiError && error.code === 'token_revoked') {
    return `${error.message}: your sign-in has expired or was revoked; run upc login again`;
  }
  return brief(error instanceof Error ? error.message : String(error));
}

/** Longest line, and most lines, of a message: paths from an image can be 64 KiB long. */
const MESSAGE_LINE = 400;
const MESSAGE_LINES = 30;

/** A message cut to a size a person reads: long lines shortened in the middle, few lines. */
export function brief(message: string): string {
  const lines = message
    .split('\n')
    .map((line) =>
      line.length <= MESSAGE_LINE
        ? line
        : `${line.slice(0, MESSAGE_LINE / 2)}…${line.slice(line.length - MESSAGE_LINE / 2 + 1)}`,
    );
  if (lines.length > MESSAGE_LINES)
    lines.splice(MESSAGE_LINES - 1, Infinity, `… (${lines.length - MESSAGE_LINES + 1} more lines)`);
  return lines.join('\n');
}
