import { appendFileSync, readFileSync } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { prepareBuilder, type PreparedBuilder } from '@upc/driver';
import type { PcLoginResponse } from '@upc/protocol';
import { AgentError, EXIT, exitCodeOf, messageOf } from './exit-codes.js';
import { HeadStart } from './head-start.js';
import { call, DaemonUnreachable, serve } from './ipc.js';
import { isolationWanted } from './namespace.js';
import {
  DEFAULT_WORKSPACE,
  login,
  type LoginOptions,
  type LoginReport,
  ensureDaemon,
  spawnDaemon,
  type StartedDaemon,
} from './session.js';
import { checkServerUrl, type Settings } from './settings.js';
import type { AgentHome } from './state.js';

/**
 * The PC's resident agent (`upc service`, started at boot like a login manager's own services).
 * A login that reaches it skips every start-up a `upc login` command pays for: Node and the
 * agent's code are loaded, connections to the server are warm, and the two processes a session
 * needs, its builder and its sync daemon, were started ahead of time and wait ("spares").
 */

/** After a login, the next spares start this much later: the session's first moments are the user's. */
const REFILL_DELAY_MS = 1500;

/** The host's mount table. A spare builder works on a copy of it taken when it started. */
function hostMounts(): string {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '';
  }
}

/** Whether a spare can still serve a login (loaded or not yet). */
function usable(spare: { state(): string } | undefined): boolean {
  const state = spare?.state();
  return state === 'loading' || state === 'waiting';
}

/** The processes kept ready for the next login. */
class Spares {
  private builder: { prepared: PreparedBuilder; mounts: string } | undefined;
  private daemon: StartedDaemon | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly home: AgentHome,
    private readonly isolated: boolean,
  ) {}

  fill(): void {
    if (this.closed) return;
    if (this.isolated && !usable(this.builder?.prepared)) {
      this.builder?.prepared.cancel();
      const mounts = hostMounts(); // before it starts: a mount made meanwhile makes it stale
      this.builder = { prepared: prepareBuilder(), mounts };
    }
    if (!usable(this.daemon)) this.daemon = spawnDaemon(this.home, { spare: true });
  }

  fillLater(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.fill();
    }, REFILL_DELAY_MS);
  }

  /** The spare builder, or a fresh one when it died or the PC's mounts changed since it started. */
  takeBuilder = (): PreparedBuilder => {
    const spare = this.builder;
    this.builder = undefined;
    if (usable(spare?.prepared) && spare?.mounts === hostMounts()) return spare.prepared;
    spare?.prepared.cancel();
    return prepareBuilder();
  };

  takeDaemon = (): StartedDaemon => {
    const spare = this.daemon;
    this.daemon = undefined;
    return spare && usable(spare) ? spare : spawnDaemon(this.home, { early: true });
  };

  /** Each spare's state: `loading`, `waiting` (ready for a login), or `none`. */
  state(): { builder: string; daemon: string } {
    const of = (spare: { state(): string } | undefined) => (spare && usable(spare) ? spare.state() : 'none');
    return { builder: of(this.builder?.prepared), daemon: of(this.daemon) };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.builder?.prepared.cancel();
    this.daemon?.kill();
  }
}

/**
 * A login request: `user` and `password`; the server and this PC's name default to the service's
 * own (UPC_SERVER, UPC_DEVICE_NAME). A password goes over plain http only to this machine unless
 * the request says `insecureHttp`, as `upc login --insecure-http` does.
 */
function loginOptions(body: Record<string, unknown>, settings: Settings): LoginOptions {
  const text = (name: string, fallback?: string): string => {
    const value = body[name] ?? fallback;
    if (typeof value !== 'string' || value === '')
      throw new AgentError(`the login request needs "${name}" (a string)`, EXIT.usage);
    return value;
  };
  for (const flag of ['takeOver', 'insecureHttp']) {
    if (body[flag] !== undefined && typeof body[flag] !== 'boolean')
      throw new AgentError(`"${flag}" must be true or false`, EXIT.usage);
  }
  return {
    server: checkServerUrl(text('server', settings.server), body.insecureHttp === true).toString(),
    user: text('user'),
    password: text('password'),
    workspace: text('workspace', DEFAULT_WORKSPACE),
    takeOver: body.takeOver === true,
    deviceName: text('deviceName', settings.deviceName),
    quiet: true,
  };
}

export interface RunningService {
  socket: string;
  close(): Promise<void>;
}

/**
 * Serves logins for this agent home on its service socket (only root, the home's owner, can
 * connect). One login runs at a time; the others wait their turn.
 */
export async function startService(
  home: AgentHome,
  settings: Settings,
  features: { headStart: boolean } = { headStart: true },
): Promise<RunningService> {
  const log = (message: string) => {
    appendFileSync(home.serviceLog, `${new Date().toISOString()} ${message}\n`, { mode: 0o600 });
  };
  try {
    await call(home.serviceSocket, 'GET', '/status', undefined, 2000);
    throw new AgentError(`a uPC service already serves ${home.dir} (${home.serviceSocket})`, EXIT.inUse);
  } catch (error) {
    if (!(error instanceof DaemonUnreachable)) throw error;
  }
  const spares = new Spares(home, isolationWanted());
  const headStart = features.headStart ? new HeadStart(home) : undefined;
  let queue: Promise<void> = Promise.resolve();
  let logins = 0;
  /**
   * The session's daemon is waited for here, not by the person logging in. One that fails to
   * answer is replaced by a recovering one, which commits whatever the session wrote meanwhile.
   */
  const supervise = async (answer: Promise<unknown>): Promise<void> => {
    try {
      await answer;
      return;
    } catch (error) {
      log(`the session's daemon did not start (${messageOf(error)}); starting another`);
    }
    try {
      await ensureDaemon(home);
      log("the session's daemon was restarted");
    } catch (again) {
      log(`the session's daemon could not be restarted: ${messageOf(again)}`);
    }
  };
  const serveLogin = async (
    body: Record<string, unknown>,
    superviseDaemon: (answer: Promise<unknown>) => void,
  ): Promise<{ status: number; body: unknown }> => {
    let options: LoginOptions;
    try {
      options = loginOptions(body, settings);
    } catch (error) {
      return { status: 400, body: { error: messageOf(error), exit: exitCodeOf(error) } };
    }
    try {
      const report = await login(home, options, {
        builder: spares.takeBuilder,
        daemon: spares.takeDaemon,
        superviseDaemon,
        ...(headStart && {
          headStart: (login: LoginOptions, takeBuilder: () => PreparedBuilder | undefined) =>
            headStart.prepare(login, takeBuilder).catch((error: unknown) => {
              log(`head start for ${login.user} failed (the login goes on without): ${messageOf(error)}`);
              return undefined;
            }),
          gathered: (gather: PcLoginResponse) => {
            headStart.remember(options, gather);
          },
        }),
      });
      logins++;
      log(
        `login ${options.user} → session ${report.session} in ${String(report.timings.totalMs)} ms` +
          (report.headStart ? ' (restored while the server answered)' : ''),
      );
      return { status: 200, body: { ...report, via: 'service' } satisfies LoginReport };
    } catch (error) {
      headStart?.forget(options);
      log(`login ${options.user} failed: ${messageOf(error)}`);
      return { status: 422, body: { error: messageOf(error), exit: exitCodeOf(error) } };
    } finally {
      spares.fillLater();
    }
  };
  const server: Server = await serve(home.serviceSocket, {
    'GET /status': () =>
      Promise.resolve({
        status: 200,
        body: {
          pid: process.pid,
          home: home.dir,
          socket: home.serviceSocket,
          logins,
          spares: spares.state(),
          headStart: headStart ? { remembered: headStart.size() } : null,
        },
      }),
    'POST /login': (body) => {
      // A turn ends when its answer is sent and its session's daemon is up (or was replaced).
      const previous = queue;
      let endTurn: () => void = () => undefined;
      queue = new Promise<void>((resolve) => {
        endTurn = resolve;
      });
      return previous.then(async () => {
        let daemonUp: Promise<void> = Promise.resolve();
        try {
          return await serveLogin(body, (answer) => {
            daemonUp = supervise(answer);
          });
        } finally {
          void daemonUp.then(endTurn);
        }
      });
    },
  });
  await chmod(home.serviceSocket, 0o600);
  spares.fill();
  log(`service ${String(process.pid)} serving ${home.serviceSocket}`);
  return {
    socket: home.serviceSocket,
    close: async () => {
      spares.close();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
      await rm(home.serviceSocket, { force: true });
      log(`service ${String(process.pid)} stopped`);
    },
  };
}

/**
 * A login made by this PC's service, when one serves this agent home; `undefined` when none does
 * (the command then logs in itself).
 */
export async function loginViaService(
  home: AgentHome,
  options: LoginOptions,
  insecureHttp: boolean,
): Promise<LoginReport | undefined> {
  let answer;
  try {
    answer = await call(home.serviceSocket, 'POST', '/login', { ...options, insecureHttp, quiet: undefined });
  } catch (error) {
    if (error instanceof DaemonUnreachable) return undefined;
    throw error;
  }
  if (answer.status === 200) return answer.body as LoginReport;
  const failure = answer.body as { error?: string; exit?: number };
  throw new AgentError(failure.error ?? `the uPC service answered ${String(answer.status)}`, failure.exit);
}
