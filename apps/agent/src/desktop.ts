import { writeFile } from 'node:fs/promises';
import {
  chooseDesktop,
  type Desktop,
  DriverError,
  type Run,
  screenshot,
  startTimeOf,
  startDesktop,
  stopDesktop,
  type SwitchResult,
  switchTo,
} from '@upc/driver';
import { AgentError, EXIT } from './exit-codes.js';
import { ensureNamespace, runInNamespace } from './namespace.js';
import { callDaemon, daemonRunning, ensureDaemon, sessionPolicy } from './session.js';
import type { AgentHome, NamespaceRecord, SessionRecord } from './state.js';

/**
 * The session's desktop (the paper's CreateDesktop/SwitchDesktop): an X display of the session's
 * own, started inside its namespaces as the user, recorded in the session so that later commands
 * show it, photograph it, switch to it or stop it.
 */
export interface DesktopReport {
  started: boolean;
  kind: string;
  display: number;
  vt: number | null;
  warnings: string[];
  screenshot: string | null;
}

async function isolatedSession(home: AgentHome): Promise<{ session: SessionRecord; ns: NamespaceRecord }> {
  const session = await home.requireSession();
  if (!(await daemonRunning(home))) await ensureDaemon(home);
  const before = session.namespace?.init;
  const ns = await ensureNamespace(home, session, sessionPolicy(session));
  if (!ns) {
    throw new AgentError(
      'the session has no desktop of its own: it is not isolated (Linux, the agent running as root)',
      EXIT.usage,
    );
  }
  if (ns.init !== before) {
    delete ns.desktop; // the namespaces were rebuilt: the old desktop went with them
    await callDaemon(home, 'POST', '/reload');
  }
  return { session, ns };
}

/** Runs a program of the desktop inside the session, as the user. */
function runner(ns: NamespaceRecord, session: SessionRecord): Run {
  return (argv, options) =>
    runInNamespace(ns, session, argv, {
      admin: false,
      env: options.env,
      stdio: options.detached ? 'ignore' : 'pipe',
      detached: options.detached,
    });
}

/** The recorded desktop, if its X server still runs. */
function liveDesktop(ns: NamespaceRecord): Desktop | undefined {
  const desktop = ns.desktop as Desktop | undefined;
  const server = desktop?.processes[0];
  if (!desktop || !server || startTimeOf(server.pid) !== server.start) return undefined;
  return desktop;
}

async function record(home: AgentHome, session: SessionRecord, desktop: Desktop | undefined): Promise<void> {
  if (!session.namespace) return;
  if (desktop) session.namespace.desktop = { ...desktop };
  else delete session.namespace.desktop;
  await home.writeSession(session);
  await callDaemon(home, 'POST', '/reload'); // the daemon writes the session too: it keeps this
}

/** Starts the session's desktop unless it runs; with `screenshotFile`, saves what it shows. */
export async function desktop(home: AgentHome, options: { screenshotFile?: string }): Promise<DesktopReport> {
  const { session, ns } = await isolatedSession(home);
  let current = liveDesktop(ns);
  const started = current === undefined;
  if (!current) {
    const run = runner(ns, session);
    const choice = chooseDesktop(process.env);
    try {
      current = await startDesktop(run, choice);
    } catch (error) {
      if (!(error instanceof DriverError)) throw error;
      if (choice.kind === 'virtual') throw new AgentError(`cannot start the desktop: ${error.message}`);
      // Xorg on a VT or Xephyr may lack what they need here (devices, the host's X cookie).
      current = await startDesktop(run, { kind: 'virtual', display: choice.display }).catch(
        (second: unknown) => {
          throw new AgentError(
            `cannot start the desktop: ${error.message}; nor a virtual one: ${(second as Error).message}`,
          );
        },
      );
      current.warnings.unshift(
        `${choice.kind} desktop failed (${error.message}); a virtual one (Xvfb) instead`,
      );
    }
    await record(home, session, current);
  }
  let saved: string | null = null;
  if (options.screenshotFile) {
    const png = await screenshot(runner(ns, session), current.display).catch((error: unknown) => {
      throw new AgentError((error as Error).message);
    });
    await writeFile(options.screenshotFile, png);
    saved = options.screenshotFile;
  }
  return {
    started,
    kind: current.kind,
    display: current.display,
    vt: current.vt ?? null,
    warnings: current.warnings,
    screenshot: saved,
  };
}

/** Stops the session's desktop (logout does this too). Whether one was running. */
export async function stopSessionDesktop(home: AgentHome): Promise<boolean> {
  const { session, ns } = await isolatedSession(home);
  const current = liveDesktop(ns);
  if (current) {
    await stopDesktop(current).catch((error: unknown) => {
      throw new AgentError((error as Error).message);
    });
  }
  await record(home, session, undefined);
  return current !== undefined;
}

/** Shows the host's screen or the workspace's desktop (`chvt` for a desktop on its own VT). */
export async function switchDesktop(home: AgentHome, target: 'host' | 'workspace'): Promise<SwitchResult> {
  const { ns } = await isolatedSession(home);
  const current = liveDesktop(ns);
  if (!current)
    return { switched: false, reason: 'the session has no desktop running; start it with upc desktop' };
  try {
    return switchTo(target, current);
  } catch (error) {
    throw new AgentError((error as Error).message);
  }
}
