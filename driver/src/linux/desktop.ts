import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTimeOf } from './ids.js';
import { perform } from './privileged.js';
import { DriverError } from './session.js';
import { countColours, decodeXwd, xwdToPng } from './xwd.js';

/**
 * The session's own graphical desktop: an X server started inside the session (as its user), a
 * window manager and a first window, a screenshot of it, and a switch between it and the host's
 * screen where there is one to switch.
 *
 * - 'nested': Xephyr, a window on the host's display (the agent has a DISPLAY and Xephyr exists).
 * - 'vt': Xorg on a virtual terminal of its own (a console with /dev/tty0, Xorg, no DISPLAY).
 * - 'virtual': Xvfb, a screen in memory only: seen through screenshots.
 */
export type DesktopKind = 'vt' | 'nested' | 'virtual';

/** Which X server to start, and where. */
export interface DesktopChoice {
  kind: DesktopKind;
  /** The X display number: `:display`. */
  display: number;
  /** The VT Xorg takes (kind 'vt'). */
  vt?: number;
  /** The host's display Xephyr opens its window on (kind 'nested'), and its cookie file if any. */
  hostDisplay?: string;
  hostXauthority?: string;
}

/** A running desktop, as the caller records it (JSON) to show, photograph or stop it later. */
export interface Desktop extends DesktopChoice {
  /** The VT the host showed when the desktop started (kind 'vt'): where `switchTo('host')` goes. */
  hostVt?: number;
  /** The desktop's programs, the X server first; each leads a process group of its own. */
  processes: DesktopProcess[];
  /** What the desktop goes without (no window manager, no first window), for the person at the screen. */
  warnings: string[];
}

export interface DesktopProcess {
  program: string;
  /** The host's pid of the process `run` started (the group's leader), and its start time. */
  pid: number;
  start: string;
}

export interface RunOptions {
  /**
   * A long-lived program (the X server, the window manager, a window): it gets a process group of
   * its own (spawn's `detached`), is not waited for, and may have no pipes (stdio 'ignore'). Any
   * other program is waited for, and its stdout and stderr must be pipes: they are read.
   */
  detached: boolean;
  /** What the desktop sets (DISPLAY…), to merge over the session user's usual environment. */
  env: Record<string, string>;
}

/** Runs `argv` inside the session as its user (the caller wraps the driver's `enter`). */
export type Run = (argv: string[], options: RunOptions) => ChildProcess;

/** What `chooseDesktop` asks of the host; replaced in tests. */
export interface HostProbe {
  /** Whether `program` is an executable in one of the folders of `path` (a PATH value). */
  onPath(program: string, path: string | undefined): boolean;
  exists(path: string): boolean;
  /** The display numbers an X server of the host (or of another session) already uses. */
  displaysInUse(): Set<number>;
}

export const SCREEN = { width: 1280, height: 800 };
/** The first VT a stock system leaves alone: logind starts gettys on 1–6, display managers take 7. */
const DEFAULT_VT = 8;
const READY_TIMEOUT_MS = 5000;
const POLL_MS = 100;
const WINDOW_MANAGER_SETTLE_MS = 250; // twm that cannot load its fonts ends in about 25 ms
const COMMAND_TIMEOUT_MS = 10_000;
/** The most a program of the desktop may say: a screenshot of a 5K screen (59 MB), with room to spare. */
const MAX_OUTPUT = 64 * 1024 * 1024;
/** After a SIGTERM, how long the relay has before it is killed. */
const END_GRACE_MS = 3000;
const X_SOCKET = /^@?\/tmp\/\.X11-unix\/X(\d+)$/;
/** The window managers and first windows started when the session has them, in order of preference. */
const WINDOW_MANAGERS = ['twm'];
const FIRST_WINDOWS: Record<string, string[]> = {
  xterm: ['xterm', '-geometry', '100x30+60+60'],
  xclock: ['xclock', '-geometry', '300x300+60+60', '-update', '1'],
  xeyes: ['xeyes', '-geometry', '300x200+60+60'],
};

export const HOST_PROBE: HostProbe = {
  onPath(program, path) {
    return (path ?? '').split(delimiter).some((dir) => {
      if (dir === '') return false;
      try {
        accessSync(join(dir, program), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  },
  exists: existsSync,
  displaysInUse() {
    const used = new Set<number>();
    // /proc/net/unix lists the network namespace's sockets, abstract ones ("@/tmp/.X11-unix/X0") and
    // those bound in any mount namespace's /tmp (sessions' included), by the path they were bound at.
    let sockets: string[] = [];
    try {
      sockets = readFileSync('/proc/net/unix', 'utf8')
        .split('\n')
        .map((line) => line.slice(line.lastIndexOf(' ') + 1));
    } catch {
      // no /proc: only the lock files below say anything
    }
    for (const name of sockets) {
      const number = X_SOCKET.exec(name)?.[1];
      if (number !== undefined) used.add(Number(number));
    }
    for (let n = 0; n < 100; n++) if (existsSync(`/tmp/.X${n}-lock`)) used.add(n);
    return used;
  },
};

/**
 * The first display number from `from` up that no X server uses. A session has a /tmp of its own,
 * so its X server's socket file collides with nobody's; but it shares the host's network namespace,
 * where X servers also listen on an abstract socket named after the display ("@/tmp/.X11-unix/X1"):
 * an X server on a number the host (or another session) uses refuses to start, and clients asked
 * to connect to that number try the abstract socket first. So the number is chosen on the host.
 */
export function freeDisplay(from = 1, host: HostProbe = HOST_PROBE): number {
  const used = host.displaysInUse();
  for (let n = from; n < from + 1000; n++) if (!used.has(n)) return n;
  throw new DriverError(`no free X display number from :${from}`);
}

/** The desktop this host can give a session (see `DesktopKind`), on a free display number. */
export function chooseDesktop(env: NodeJS.ProcessEnv, host: HostProbe = HOST_PROBE): DesktopChoice {
  const display = freeDisplay(1, host);
  const hostDisplay = env.DISPLAY;
  if (hostDisplay && host.onPath('Xephyr', env.PATH)) {
    return {
      kind: 'nested',
      display,
      hostDisplay,
      ...(env.XAUTHORITY ? { hostXauthority: env.XAUTHORITY } : {}),
    };
  }
  if (!hostDisplay && host.exists('/dev/tty0') && host.onPath('Xorg', env.PATH)) {
    return { kind: 'vt', display, vt: DEFAULT_VT };
  }
  return { kind: 'virtual', display };
}

/** The X server's command line and environment for a choice. */
function serverCommand(choice: DesktopChoice): { argv: string[]; env: Record<string, string> } {
  // -nolisten local: no abstract socket, so the server is reachable only through its socket file
  // in the session's own /tmp, not by every process of the host's network namespace.
  const listen = ['-nolisten', 'tcp', '-nolisten', 'local'];
  const display = `:${choice.display}`;
  const { width, height } = SCREEN;
  switch (choice.kind) {
    case 'virtual':
      return { argv: ['Xvfb', display, '-screen', '0', `${width}x${height}x24`, ...listen], env: {} };
    case 'nested': {
      if (!choice.hostDisplay) throw new DriverError('a nested desktop needs the host display (DISPLAY)');
      const env: Record<string, string> = { DISPLAY: choice.hostDisplay };
      if (choice.hostXauthority) env.XAUTHORITY = choice.hostXauthority;
      return {
        argv: ['Xephyr', display, '-screen', `${width}x${height}`, '-title', 'uPC workspace', ...listen],
        env,
      };
    }
    case 'vt':
      return { argv: ['Xorg', display, `vt${choice.vt ?? DEFAULT_VT}`, ...listen], env: {} };
  }
}

/**
 * Starts the desktop inside the session: the X server, then (once it answers) a window manager and
 * a first window, each from the ones the session has. Returns what the caller records.
 */
export async function startDesktop(run: Run, choice: DesktopChoice): Promise<Desktop> {
  const server = serverCommand(choice);
  const serverProgram = server.argv[0] ?? '';
  // Asked inside the session: its /usr is the workspace's, where the user may add or remove programs.
  const present = await programsInSession(run, [
    serverProgram,
    'xwd',
    ...WINDOW_MANAGERS,
    ...Object.keys(FIRST_WINDOWS),
  ]);
  if (!present.has(serverProgram)) {
    throw new DriverError(`${serverProgram} is not installed in the workspace: it is needed for its desktop`);
  }
  // A socket already there would look like the new server's: refuse rather than be fooled.
  const socket = `/tmp/.X11-unix/X${choice.display}`;
  if ((await finish(run, ['test', '-S', socket])).code === 0) {
    throw new DriverError(`display :${choice.display} is taken in the session (${socket} exists)`);
  }
  const hostVt = choice.kind === 'vt' ? activeVt() : undefined; // Xorg switches to its VT as it starts
  const desktop: Desktop = {
    ...choice,
    ...(hostVt === undefined ? {} : { hostVt }),
    processes: [],
    warnings: [],
  };
  try {
    const x = launch(run, server.argv, server.env);
    if (x.process) desktop.processes.push(x.process);
    await waitForServer(run, `${serverProgram} :${choice.display}`, choice.display, present.has('xwd'), x);
    const env = { DISPLAY: `:${choice.display}` };
    const windowManager = WINDOW_MANAGERS.find((program) => present.has(program));
    if (windowManager) {
      // A window manager that fails as it starts (twm without its fonts: Helvetica, from
      // xfonts-75dpi or xfonts-100dpi) may first take over the mapping of windows: a window started
      // meanwhile would never show. So it gets a moment to fail; the desktop then goes without one.
      const manager = launch(run, [windowManager], env);
      await sleep(WINDOW_MANAGER_SETTLE_MS);
      const ended = manager.ended();
      if (ended !== undefined) {
        desktop.warnings.push(`the window manager ${windowManager} ${ended}: the desktop has none`);
      } else if (manager.process) {
        desktop.processes.push(manager.process);
      }
    } else {
      desktop.warnings.push(`no window manager (${WINDOW_MANAGERS.join(', ')}) in the workspace`);
    }
    const firstWindow = Object.entries(FIRST_WINDOWS).find(([program]) => present.has(program));
    if (firstWindow) {
      const window = launch(run, firstWindow[1], env);
      if (window.process) {
        desktop.processes.push(window.process);
        // Shown once it has drawn: a screenshot, or the user, then sees it.
        if (present.has('xwd') && !(await firstWindowDrawn(run, choice.display, window))) {
          desktop.warnings.push(
            `the first window, ${firstWindow[0]}, had not drawn after ${String(READY_TIMEOUT_MS)} ms`,
          );
        }
      } else {
        desktop.warnings.push(`the first window, ${firstWindow[0]}, ${window.ended() ?? 'ended'}`);
      }
    } else {
      desktop.warnings.push(`no first window (${Object.keys(FIRST_WINDOWS).join(', ')}) in the workspace`);
    }
    return desktop;
  } catch (error) {
    try {
      await stopDesktop(desktop);
    } catch {
      // the first failure is the one to report; logout ends whatever is left
    }
    throw error;
  }
}

/**
 * Stops the desktop's programs: their process groups are asked to end, then killed after
 * `graceMs`. A pid that is no longer the process recorded (it ended, or was reused) is left alone.
 * Logging out of the session ends them anyway.
 */
export async function stopDesktop(desktop: Desktop, graceMs = 2000): Promise<void> {
  const groups = desktop.processes.filter((p) => startTimeOf(p.pid) === p.start).map((p) => p.pid);
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    for (const group of groups) signalGroup(group, signal);
    const deadline = Date.now() + graceMs;
    while (groups.some(groupAlive) && Date.now() < deadline) await sleep(20);
    if (!groups.some(groupAlive)) return;
  }
  throw new DriverError(`the desktop's processes ${groups.filter(groupAlive).join(', ')} did not end`);
}

/** A PNG of the whole screen of display `:display`, taken inside the session by `xwd`. */
export async function screenshot(run: Run, display: number): Promise<Buffer> {
  const result = await finish(run, ['xwd', '-root', '-silent', '-display', `:${display}`]);
  if (result.code !== 0) {
    const why = result.stderr.trim() || `exit ${String(result.code)}`;
    throw new DriverError(`cannot take a screenshot of display :${display}: ${why}`);
  }
  return xwdToPng(result.stdout);
}

export type SwitchResult = { switched: true; vt: number } | { switched: false; reason: string };

/**
 * Shows the host's screen or the workspace's desktop. Only a 'vt' desktop has a screen of its own
 * to switch to; for the others the result says why nothing was switched. A failed switch throws.
 */
export function switchTo(target: 'host' | 'workspace', desktop: Desktop, hostVt?: number): SwitchResult {
  const display = `:${desktop.display}`;
  if (desktop.kind === 'virtual') {
    return {
      switched: false,
      reason: `the workspace desktop is a virtual display (Xvfb ${display}) with no screen; use upc desktop --screenshot`,
    };
  }
  if (desktop.kind === 'nested') {
    return {
      switched: false,
      reason: `the workspace desktop (Xephyr ${display}) is a window on the host's display ${desktop.hostDisplay ?? ''}: nothing to switch`,
    };
  }
  const vt = target === 'workspace' ? desktop.vt : (hostVt ?? desktop.hostVt);
  if (vt === undefined) {
    return { switched: false, reason: `the ${target === 'host' ? "host's" : "workspace's"} VT is not known` };
  }
  const result = perform({ op: 'activate-vt', vt });
  if (!result.ok) throw new DriverError(`cannot show VT ${vt}: ${result.message}`);
  return { switched: true, vt };
}

/** The VT the console shows now ("tty1" in /sys/class/tty/tty0/active: 1), if there is a console. */
export function activeVt(): number | undefined {
  try {
    const match = /^tty(\d+)$/.exec(readFileSync('/sys/class/tty/tty0/active', 'utf8').trim());
    return match?.[1] === undefined ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

interface Launched {
  /** Undefined when the program had already ended by the time it was looked at. */
  process?: DesktopProcess;
  /** Set when the program has ended (or could not start): how. */
  ended(): string | undefined;
}

/** Starts a long-lived program in a process group of its own; the agent does not wait for it. */
function launch(run: Run, argv: string[], env: Record<string, string>): Launched {
  const program = argv[0] ?? '';
  const child = run(argv, { detached: true, env });
  let ended: string | undefined;
  child.once('error', (error) => (ended = `could not start: ${error.message}`));
  child.once(
    'exit',
    (code, signal) => (ended = signal ? `ended by ${signal}` : `exited with status ${String(code)}`),
  );
  // Output, if the caller piped any, is drained so that a chatty program never blocks on it.
  child.stdout?.resume();
  child.stderr?.resume();
  child.unref();
  if (child.pid === undefined) throw new DriverError(`cannot start ${program}`);
  const start = startTimeOf(child.pid);
  if (start === undefined) return { ended: () => ended ?? 'ended at once' };
  return { process: { program, pid: child.pid, start }, ended: () => ended };
}

/**
 * Waits until the X server answers. Its socket file alone is not enough: the server binds it a
 * moment before it listens, and a client connecting in between is refused (xclock then ends with
 * "Can't open display"). So once the socket is there, an X client must connect: `xwd`, which the
 * screenshots need anyway. Without it, the socket is all there is to wait for.
 */
async function waitForServer(
  run: Run,
  server: string,
  display: number,
  canProbe: boolean,
  launched: Launched,
): Promise<void> {
  const socket = `/tmp/.X11-unix/X${display}`;
  const probe = ['xwd', '-root', '-silent', '-display', `:${display}`, '-out', '/dev/null'];
  const name = `the X server (${server})`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const ended = launched.ended();
    if (ended !== undefined) throw new DriverError(`${name} ${ended}`);
    if ((await finish(run, ['test', '-S', socket])).code === 0) {
      if (!canProbe || (await finish(run, probe)).code === 0) return;
    }
    if (Date.now() > deadline) throw new DriverError(`${name} did not answer in ${READY_TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
}

/**
 * Whether the screen shows more than the empty background within READY_TIMEOUT_MS: the first
 * window has mapped and drawn itself. False if it did not, or ended meanwhile.
 */
async function firstWindowDrawn(run: Run, display: number, window: Launched): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() <= deadline && window.ended() === undefined) {
    const shot = await finish(run, ['xwd', '-root', '-silent', '-display', `:${display}`]);
    if (shot.code === 0 && countColours(decodeXwd(shot.stdout), 2) > 1) return true;
    await sleep(POLL_MS);
  }
  return false;
}

/** Which of `programs` the session finds on its PATH. */
async function programsInSession(run: Run, programs: string[]): Promise<Set<string>> {
  // One shell for all of them: each `run` enters the session's namespaces anew.
  const script = 'for p in "$@"; do command -v "$p" >/dev/null 2>&1 && echo "$p"; done; exit 0';
  const result = await finish(run, ['sh', '-c', script, 'sh', ...programs]);
  if (result.code !== 0) {
    throw new DriverError(`cannot look for programs in the session: ${result.stderr.trim()}`);
  }
  return new Set(result.stdout.toString('utf8').split('\n').filter(Boolean));
}

interface Finished {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs a short program in the session to its end, reading its output. The program is the
 * workspace's, which its root can replace: what it says is kept up to MAX_OUTPUT bytes, and past
 * that, or past COMMAND_TIMEOUT_MS, it is ended. The driver's relay (`upc-ns enter`) passes the
 * SIGTERM to the program's whole process group and kills the group 2 s later; the relay itself is
 * killed if it has not ended by then, and what it started goes with it (a parent-death signal).
 */
function finish(run: Run, argv: string[]): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = run(argv, { detached: false, env: {} });
    const { stdout, stderr } = child;
    if (!stdout || !stderr) {
      child.kill('SIGKILL');
      reject(new DriverError('run must give a program it waits for piped stdout and stderr'));
      return;
    }
    const out: Buffer[] = [];
    let size = 0;
    let err = '';
    let ended: string | undefined;
    const end = (why: string) => {
      if (ended !== undefined) return;
      ended = why;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), END_GRACE_MS).unref();
    };
    stdout.on('data', (data: Buffer) => {
      if (ended !== undefined) return;
      size += data.length;
      if (size > MAX_OUTPUT) end(`said more than ${MAX_OUTPUT} bytes`);
      else out.push(data);
    });
    stderr.setEncoding('utf8').on('data', (data: string) => (err = (err + data).slice(-2000)));
    const timer = setTimeout(() => {
      end(`did not finish in ${COMMAND_TIMEOUT_MS} ms`);
    }, COMMAND_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new DriverError(`cannot run ${argv.join(' ')} in the session: ${error.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (ended !== undefined) reject(new DriverError(`${argv.join(' ')} in the session ${ended}: ended`));
      else resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

function signalGroup(group: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-group, signal);
  } catch {
    // already gone
  }
}

function groupAlive(group: number): boolean {
  try {
    process.kill(-group, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
