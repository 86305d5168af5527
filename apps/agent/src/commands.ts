import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';
import type { ParseArgsConfig } from 'node:util';
import { UpcClient } from '@upc/protocol';
import { describePolicy, openWorkspace, policyReport, readOverride } from './account.js';
import { AgentError, EXIT } from './exit-codes.js';
import { exportImage, importImage, runFile } from './image.js';
import { history, restore } from './history.js';
import { describeHostFolders, hostFolders } from './host-folders.js';
import { loginViaService, startService } from './service.js';
import { formatBytes } from './progress.js';
import {
  DEFAULT_WORKSPACE,
  callDaemon,
  callDaemonWithProgress,
  daemonRunning,
  type DaemonStatus,
  ensureDaemon,
  homeOf,
  login,
  type LoginReport,
  logout,
  notDurable,
  sessionPolicy,
} from './session.js';
import { isRunning } from '@upc/driver';
import { desktop, stopSessionDesktop, switchDesktop } from './desktop.js';
import { ensureNamespace, runInNamespace } from './namespace.js';
import { checkServerUrl, type Settings } from './settings.js';
import { AgentHome, type SessionRecord } from './state.js';

/** What `upc device layers` says each choice means. */
const LAYERS_SAID = {
  auto: "sessions' files are kept in memory when it has room for them, else on disk",
  memory: "sessions' files are kept in memory (/dev/shm), whatever their size",
  disk: "sessions' files are kept on disk, in the agent's home",
} as const;

export interface CommandArgs {
  positionals: string[];
  /** What followed `--`. */
  passthrough: string[];
  values: Record<string, unknown>;
  settings: Settings;
}

export interface Command {
  /** The words that select it, e.g. ['admin', 'user', 'add']. */
  path: string[];
  usage: string;
  summary: string;
  details?: string;
  options: ParseArgsConfig['options'];
  /** Resolves to the exit code (default 0). */
  run(args: CommandArgs): Promise<number | undefined>;
}

const COMMON = {
  server: { type: 'string' },
  'insecure-http': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const commands: Command[] = [
  {
    path: ['login'],
    usage: 'upc login --user NAME [--workspace NAME] [--password-stdin] [--take-over] [--json]',
    summary: 'sign in, take the workspace, restore it and start syncing',
    details: `
The password comes from standard input with --password-stdin, else UPC_PASSWORD, else a prompt.
The workspace (default "${DEFAULT_WORKSPACE}") is created on first use. --take-over takes the workspace
from the PC that holds it; that PC keeps its unsynced changes as a conflict version.
`,
    options: {
      ...COMMON,
      user: { type: 'string', short: 'u' },
      workspace: { type: 'string', short: 'w' },
      'password-stdin': { type: 'boolean' },
      'take-over': { type: 'boolean' },
    },
    async run({ values, settings, positionals }) {
      noPositionals(positionals);
      const server = serverUrl(settings, values);
      const user = stringOption(values.user) ?? settings.user;
      if (!user) throw new AgentError('give --user NAME (or set UPC_USER)', EXIT.usage);
      const password =
        values['password-stdin'] === true
          ? await readStdinLine('password')
          : (settings.password ?? (await promptPassword()));
      const home = new AgentHome(settings.home);
      const options = {
        server,
        user,
        password,
        workspace: stringOption(values.workspace) ?? DEFAULT_WORKSPACE,
        takeOver: values['take-over'] === true,
        deviceName: settings.deviceName,
        quiet: values.json === true,
      };
      // The PC's service, when one runs for this home, logs in with everything already loaded.
      const report =
        (await loginViaService(home, options, values['insecure-http'] === true)) ??
        (await login(home, options));
      print(values, report, describeLogin(report, user, settings.deviceName));
      return EXIT.ok;
    },
  },
  {
    path: ['service'],
    usage: 'upc service [--no-head-start]',
    summary: "this PC's resident agent: logins reach it with everything loaded and ready",
    details: `
Runs in the foreground until SIGTERM or Ctrl-C (a systemd unit runs it at boot; see
apps/agent/README.md). It serves logins for this agent home on a socket only root can open: upc
login uses it when it runs, and a login manager can call it directly. It keeps a session builder
and a sync daemon started ahead of time, so a login does not wait for them. Sessions go on when it
stops.

With the PC keeping caches (upc device keep-cache on), it remembers in its memory, for 12 hours,
the cache key the server gave each user at their last login through it, and restores their cached
workspace while the server checks their next sign-in (kept only if the server then names the same
version). --no-head-start: remember nothing; every login waits for the server's answer.
`,
    options: { help: COMMON.help, 'no-head-start': { type: 'boolean' } },
    async run({ values, positionals, settings }) {
      noPositionals(positionals);
      const home = new AgentHome(settings.home);
      const service = await startService(home, settings, { headStart: values['no-head-start'] !== true });
      process.stdout.write(`upc service ${String(process.pid)} serving ${service.socket}\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await service.close();
      return EXIT.ok;
    },
  },
  {
    path: ['status'],
    usage: 'upc status [--json]',
    summary: "the session: workspace, version, pending changes, last sync, whether it's safe to leave",
    options: COMMON,
    async run({ values, settings }) {
      const home = new AgentHome(settings.home);
      const session = await home.readSession();
      if (!session) {
        print(values, { session: null }, 'not logged in on this PC');
        return EXIT.ok;
      }
      const status = await ensureDaemon(home);
      const isolation = describeIsolation(session);
      print(
        values,
        { ...status, home: session.namespace?.home ?? homeOf(session), isolation },
        `${describeStatus(status)}\n${isolation.text}`,
      );
      return EXIT.ok;
    },
  },
  {
    path: ['sync'],
    usage: 'upc sync [--timeout SECONDS] [--json]',
    summary: 'return once every change made so far is durable on the server',
    details: `
While the server cannot be reached it keeps trying for --timeout seconds (default 30), then fails
with exit 4; the changes stay queued on this PC either way.
`,
    options: { ...COMMON, timeout: { type: 'string' } },
    async run({ values, settings }) {
      const home = new AgentHome(settings.home);
      await home.requireSession();
      await ensureDaemon(home);
      const waitMs = timeoutOf(values);
      const answer = await callDaemonWithProgress(home, '/sync', { waitMs }, values.json === true);
      if (answer.status !== 200) throw notDurable(answer.status, answer.body);
      print(
        values,
        answer.body,
        answer.body.conflict
          ? `saved as conflict version ${answer.body.versionId ?? '?'}: ${answer.body.conflict.holder} has the workspace now`
          : answer.body.committed === true
            ? `saved as version ${answer.body.versionId ?? '?'}`
            : `nothing to save; version ${answer.body.versionId ?? '(empty)'} holds everything`,
      );
      return EXIT.ok;
    },
  },
  {
    path: ['logout'],
    usage: 'upc logout [--keep-local] [--timeout SECONDS] [--json]',
    summary: 'save everything, end the session and leave this PC as it was',
    details: `
The files are wiped only after a final "logout" version is durable; if that cannot be done the
command fails and keeps everything; while the server cannot be reached it keeps trying for
--timeout seconds (default 30) first. --keep-local keeps a copy of the files under UPC_HOME/kept.
`,
    options: { ...COMMON, 'keep-local': { type: 'boolean' }, timeout: { type: 'string' } },
    async run({ values, settings }) {
      const report = await logout(new AgentHome(settings.home), {
        keepLocal: values['keep-local'] === true,
        quiet: values.json === true,
        waitMs: timeoutOf(values),
      });
      const saved =
        report.kind === 'conflict'
          ? `another PC had taken the workspace; your changes are kept as conflict version ${report.version ?? '?'}`
          : `saved as version ${report.version ?? '(empty)'}`;
      print(
        values,
        report,
        `logged out of "${report.workspace.name}": ${saved}${report.kept ? `; local copy kept in ${report.kept}` : ''} (${Math.round(report.timings.totalMs)} ms)`,
      );
      return EXIT.ok;
    },
  },
  {
    path: ['exec'],
    usage: 'upc exec [--admin] -- CMD [ARGS...]',
    summary: "run a command in the session (HOME is the workspace's home)",
    details: `
On Linux, as root, the command runs inside the session's namespaces as the workspace's user: it
sees the workspace's /home, /opt, /usr/local and its changes to /etc, and nothing of other sessions.
--admin runs it as the workspace's root (to install programs or edit /etc): root of the workspace
only, never of the PC.
`,
    options: { help: COMMON.help, admin: { type: 'boolean' } },
    async run({ passthrough, positionals, values, settings }) {
      const argv = passthrough.length > 0 ? passthrough : positionals;
      if (argv.length === 0) throw new AgentError('give the command after --: upc exec -- CMD', EXIT.usage);
      return runInSession(new AgentHome(settings.home), argv, { admin: values.admin === true });
    },
  },
  {
    path: ['shell'],
    usage: 'upc shell [--admin]',
    summary: 'an interactive shell in the session',
    options: { help: COMMON.help, admin: { type: 'boolean' } },
    async run({ values, settings }) {
      return runInSession(new AgentHome(settings.home), undefined, { admin: values.admin === true });
    },
  },
  {
    path: ['desktop'],
    usage: 'upc desktop [--screenshot FILE] [--stop] [--json]',
    summary: "start the session's own graphical desktop, or say where it is",
    details: `
The desktop is an X display of the session's own, started inside the session as the user, with a
window manager and a first window: Xephyr in a window when this PC has a display (DISPLAY),
Xorg on a spare virtual terminal at a console, else Xvfb (a screen in memory). Programs started
with upc exec get its DISPLAY. --screenshot FILE saves what it shows as a PNG; --stop ends it
(logout does too). upc switch moves between it and this PC's desktop.
`,
    options: { ...COMMON, screenshot: { type: 'string' }, stop: { type: 'boolean' } },
    async run({ positionals, values, settings }) {
      noPositionals(positionals);
      const home = new AgentHome(settings.home);
      if (values.stop === true) {
        const stopped = await stopSessionDesktop(home);
        print(values, { stopped }, stopped ? 'the desktop is stopped' : 'no desktop was running');
        return EXIT.ok;
      }
      const screenshotFile = stringOption(values.screenshot);
      const report = await desktop(home, screenshotFile ? { screenshotFile } : {});
      const lines = [
        `${report.started ? 'started' : 'running'}: the workspace's desktop on display :${String(report.display)} (${report.kind}${report.vt === null ? '' : `, VT ${String(report.vt)}`})`,
        ...report.warnings.map((w) => `  note: ${w}`),
        ...(report.screenshot ? [`  screenshot saved to ${report.screenshot}`] : []),
      ];
      print(values, report, lines.join('\n'));
      return EXIT.ok;
    },
  },
  {
    path: ['switch'],
    usage: 'upc switch host|workspace [--json]',
    summary: "show this PC's desktop or the workspace's (chvt, for a desktop on its own VT)",
    options: COMMON,
    async run({ positionals, values, settings }) {
      const [target] = positionals;
      if ((target !== 'host' && target !== 'workspace') || positionals.length > 1) {
        throw new AgentError('say host or workspace: upc switch host|workspace', EXIT.usage);
      }
      const result = await switchDesktop(new AgentHome(settings.home), target);
      print(
        values,
        result,
        result.switched
          ? `switched to VT ${String(result.vt)} (${target})`
          : `not switched: ${result.reason}`,
      );
      return result.switched ? EXIT.ok : EXIT.failed;
    },
  },
  {
    path: ['history'],
    usage: 'upc history [--workspace NAME] [--limit N] [--json]',
    summary: 'the versions of the workspace: id, kind, PC and time',
    options: { ...COMMON, workspace: { type: 'string', short: 'w' }, limit: { type: 'string' } },
    async run({ values, settings }) {
      const limit = Number(stringOption(values.limit) ?? '50');
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
        throw new AgentError('--limit must be a whole number from 1 to 500', EXIT.usage);
      }
      const rows = await history(new AgentHome(settings.home), {
        connect: () => signedIn(settings, values, { sessionToken: true }),
        workspace: stringOption(values.workspace),
        limit,
      });
      const lines = rows.map(
        (v) => `${v.id}  ${v.kind.padEnd(10)} ${v.time}  ${v.device ?? '-'}${v.head ? '  (HEAD)' : ''}`,
      );
      print(values, rows, lines.length > 0 ? lines.join('\n') : 'no versions yet');
      return EXIT.ok;
    },
  },
  {
    path: ['restore'],
    usage: 'upc restore VERSION [--path P] [--json]',
    summary: 'roll the workspace, or one path, back to VERSION, as a new version',
    details: `
VERSION is a version id or a unique prefix of one (see upc history). P is relative to the
workspace's home folder. The session's files change in place and the result is committed.
`,
    options: { ...COMMON, path: { type: 'string' } },
    async run({ positionals, values, settings }) {
      const [version] = positionals;
      if (!version || positionals.length > 1) throw new AgentError('give exactly one VERSION', EXIT.usage);
      const result = await restore(new AgentHome(settings.home), version, stringOption(values.path));
      print(
        values,
        result,
        `restored ${result.path ?? 'the workspace'} from ${result.from}: now version ${result.versionId ?? '?'}`,
      );
      return EXIT.ok;
    },
  },
  {
    path: ['policy', 'show'],
    usage: 'upc policy show [--workspace NAME] [--json]',
    summary: "the workspace's policy: this PC's default and the workspace's override, one rule per line",
    details: `
Rules that come from the workspace's override are marked, and default rules it removes are listed.
The rules (DESIGN.md): forward (saved, the host's content hidden), cow (the host's content beneath,
changes saved), host (passed through), ephemeral (empty each session), exclude (never saved).
`,
    options: { ...COMMON, workspace: { type: 'string', short: 'w' } },
    async run({ positionals, values, settings }) {
      noPositionals(positionals);
      const { workspace } = await openWorkspace(
        new AgentHome(settings.home),
        () => signedIn(settings, values, { sessionToken: true }),
        stringOption(values.workspace),
      );
      const report = policyReport(workspace);
      print(values, report, describePolicy(report));
      return EXIT.ok;
    },
  },
  {
    path: ['policy', 'set'],
    usage: 'upc policy set FILE [--workspace NAME] [--json]',
    summary: "store FILE (a JSON override of the default policy) as the workspace's policy",
    details: `
FILE is {"v": 1, "platform": "linux", "rules": [...]}: its rules replace the default's rule for the
same path (or pattern) and add new ones; {"kind": "none", "path": P} (or "pattern") removes the
default's rule. Paths are absolute; ~ is the user's home. Example, to keep build output out of the
image: {"v": 1, "platform": "linux", "rules": [{"kind": "exclude", "pattern": "~/build/**"}]}
A FILE that is not valid is refused (exit 2) with the rules at fault. The policy applies from the
next login; a session already open keeps the one it started with.
`,
    options: { ...COMMON, workspace: { type: 'string', short: 'w' } },
    async run({ positionals, values, settings }) {
      const [file] = positionals;
      if (!file || positionals.length > 1) throw new AgentError('give exactly one FILE', EXIT.usage);
      const override = await readOverride(file);
      const { client, workspace } = await openWorkspace(
        new AgentHome(settings.home),
        () => signedIn(settings, values, { sessionToken: true }),
        stringOption(values.workspace),
        { create: true },
      );
      const report = policyReport(await client.setPolicy(workspace.id, override));
      print(
        values,
        report,
        `stored the policy of "${workspace.name}"; it applies from the next login\n${describePolicy(report)}`,
      );
      return EXIT.ok;
    },
  },
  {
    path: ['policy', 'reset'],
    usage: 'upc policy reset [--workspace NAME] [--json]',
    summary: "remove the workspace's override: the default policy applies from the next login",
    options: { ...COMMON, workspace: { type: 'string', short: 'w' } },
    async run({ positionals, values, settings }) {
      noPositionals(positionals);
      const { client, workspace } = await openWorkspace(
        new AgentHome(settings.home),
        () => signedIn(settings, values, { sessionToken: true }),
        stringOption(values.workspace),
      );
      const report = policyReport(await client.setPolicy(workspace.id, null));
      print(values, report, `the policy of "${workspace.name}" is the default again from the next login`);
      return EXIT.ok;
    },
  },
  {
    path: ['image', 'export'],
    usage: 'upc image export --out FILE [--workspace NAME] [--version ID] [--json]',
    summary: 'write a workspace version (default HEAD) into a portable .upc file',
    options: {
      ...COMMON,
      out: { type: 'string', short: 'o' },
      workspace: { type: 'string', short: 'w' },
      version: { type: 'string' },
    },
    async run({ values, settings }) {
      const out = stringOption(values.out);
      if (!out) throw new AgentError('give --out FILE', EXIT.usage);
      const result = await exportImage(new AgentHome(settings.home), {
        connect: () => signedIn(settings, values, { sessionToken: true }),
        workspace: stringOption(values.workspace),
        version: stringOption(values.version),
        out,
        quiet: values.json === true,
      });
      print(
        values,
        result,
        `exported version ${result.version} of "${result.workspace}" to ${result.file} (${result.objects} objects, ${formatBytes(result.bytes)})`,
      );
      return EXIT.ok;
    },
  },
  {
    path: ['image', 'import'],
    usage: 'upc image import FILE [--workspace NAME] [--json]',
    summary: "bring a .upc file in as the workspace's new HEAD",
    options: { ...COMMON, workspace: { type: 'string', short: 'w' } },
    async run({ positionals, values, settings }) {
      const [file] = positionals;
      if (!file || positionals.length > 1) throw new AgentError('give exactly one FILE', EXIT.usage);
      const result = await importImage(new AgentHome(settings.home), {
        connect: () => signedIn(settings, values, { sessionToken: true }),
        file,
        workspace: stringOption(values.workspace),
        deviceName: settings.deviceName,
        quiet: values.json === true,
      });
      print(
        values,
        result,
        `imported ${file} into "${result.workspace}" as version ${result.version} (${result.uploaded} objects uploaded)`,
      );
      return EXIT.ok;
    },
  },
  {
    path: ['run'],
    usage: 'upc run FILE [--json] [-- CMD [ARGS...]]',
    summary: 'work from a .upc file with no server; changes are saved back into the file',
    details: `
Without CMD the session stays open (use upc exec, upc shell, upc status, upc logout as usual).
With CMD, the command runs in the session and the session is closed when it ends.
`,
    options: COMMON,
    async run({ positionals, passthrough, values, settings }) {
      const [file] = positionals;
      if (!file || positionals.length > 1) throw new AgentError('give exactly one FILE', EXIT.usage);
      const home = new AgentHome(settings.home);
      const report = await runFile(home, file, { quiet: values.json === true });
      if (passthrough.length === 0) {
        print(
          values,
          report,
          `working from ${file}\n  your files: ${report.home}\n  upc logout saves and closes it`,
        );
        return EXIT.ok;
      }
      try {
        return await runInSession(home, passthrough);
      } finally {
        // Also when the command could not start: the session was opened for it alone.
        await logout(home, { keepLocal: false, quiet: values.json === true });
      }
    },
  },
  {
    path: ['device', 'keep-cache'],
    usage: 'upc device keep-cache on|off',
    summary: 'keep an encrypted object cache on this PC between sessions (default off: wipe)',
    options: { help: COMMON.help },
    async run({ positionals, settings }) {
      const [state] = positionals;
      if (state !== 'on' && state !== 'off') throw new AgentError('say on or off', EXIT.usage);
      const home = new AgentHome(settings.home);
      await home.writeDevicePreferences({
        ...(await home.readDevicePreferences()),
        keepCache: state === 'on',
      });
      process.stdout.write(
        state === 'on'
          ? 'this PC keeps an encrypted cache between sessions; only the user it belongs to can unlock it\n'
          : 'this PC wipes its cache at logout\n',
      );
      return EXIT.ok;
    },
  },
  {
    path: ['device', 'layers'],
    usage: 'upc device layers auto|memory|disk',
    summary: "where sessions' files are restored on this PC (default auto: memory when there is room)",
    options: { help: COMMON.help },
    async run({ positionals, settings }) {
      const [place] = positionals;
      if (place !== 'auto' && place !== 'memory' && place !== 'disk')
        throw new AgentError('say auto, memory or disk', EXIT.usage);
      const home = new AgentHome(settings.home);
      await home.writeDevicePreferences({ ...(await home.readDevicePreferences()), layers: place });
      process.stdout.write(`${LAYERS_SAID[place]} (from the next login on)\n`);
      return EXIT.ok;
    },
  },
  {
    path: ['device', 'host-folders'],
    usage: 'upc device host-folders [allow|deny cow|host|writable PATH | reset] [--json]',
    summary: "which of this PC's folders workspaces may change, pass through, or write to",
    details: `
A workspace's policy says which folders of the PC it wants copy-on-write (cow: the PC's content
beneath, every change saved in the workspace) or passed through (host: the PC's own, never saved).
This PC decides: a rule for a folder not listed here is left out of the session, with a warning
at login, and that folder stays the PC's, read-only. Passed-through folders are read-only in the
session unless listed as writable. By default: cow /etc, /usr, /var/lib; host /proc, /sys, /dev,
/run; nothing writable. Without arguments, lists them; changes apply from the next login on.
`,
    options: { help: COMMON.help, json: COMMON.json },
    async run({ positionals, values, settings }) {
      const access = await hostFolders(new AgentHome(settings.home), positionals);
      print(values, access, describeHostFolders(access));
      return EXIT.ok;
    },
  },
  {
    path: ['admin', 'user', 'add'],
    usage: 'upc admin user add NAME [--admin] < password',
    summary: 'create a user; the new password is read from standard input',
    options: { ...COMMON, admin: { type: 'boolean' } },
    async run({ positionals, values, settings }) {
      const [username] = positionals;
      if (!username || positionals.length > 1) throw new AgentError('give exactly one user name', EXIT.usage);
      const password = await readStdinLine('new password');
      const client = await signedIn(settings, values);
      const user = await client.createUser({
        username,
        password,
        role: values.admin === true ? 'admin' : 'user',
      });
      print(
        values,
        user,
        `created ${user.role === 'admin' ? 'admin' : 'user'} ${user.username} (${user.id})`,
      );
      return EXIT.ok;
    },
  },
  {
    path: ['admin', 'user', 'list'],
    usage: 'upc admin user list [--json]',
    summary: 'list the users',
    options: COMMON,
    async run({ values, settings }) {
      const users = await (await signedIn(settings, values)).listUsers();
      const lines = users.map(
        (u) =>
          `${u.username.padEnd(24)} ${u.role.padEnd(6)} ${u.disabled ? 'disabled' : 'active  '} ${u.createdAt}`,
      );
      print(values, users, lines.length > 0 ? lines.join('\n') : 'no users');
      return EXIT.ok;
    },
  },
];

/** `--timeout SECONDS` (default 30) in milliseconds. */
function timeoutOf(values: Record<string, unknown>): number {
  const seconds = Number(stringOption(values.timeout) ?? '30');
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > 3600) {
    throw new AgentError('--timeout must be a number of seconds from 0 to 3600', EXIT.usage);
  }
  return seconds * 1000;
}

function stringOption(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function noPositionals(positionals: string[]): void {
  if (positionals.length > 0) throw new AgentError(`unexpected "${positionals.join(' ')}"`, EXIT.usage);
}

function serverUrl(settings: Settings, values: Record<string, unknown>): string {
  const server = stringOption(values.server) ?? settings.server;
  return checkServerUrl(server, values['insecure-http'] === true).toString();
}

/**
 * A client signed in as UPC_USER / UPC_PASSWORD; with `sessionToken`, the session's own token
 * when this PC has a session of that user (or UPC_USER is not set).
 */
async function signedIn(
  settings: Settings,
  values: Record<string, unknown>,
  options: { sessionToken?: boolean } = {},
): Promise<UpcClient> {
  if (options.sessionToken) {
    const session = await new AgentHome(settings.home).readSession();
    if (session?.server && (!settings.user || settings.user === session.server.username)) {
      return new UpcClient({ baseUrl: session.server.url, token: session.server.token });
    }
  }
  const server = serverUrl(settings, values);
  if (!settings.user || !settings.password) {
    throw new AgentError('set UPC_USER and UPC_PASSWORD to the account to act as', EXIT.usage);
  }
  const client = new UpcClient({ baseUrl: server });
  await client.login(settings.user, settings.password);
  return client;
}

async function readStdinLine(what: string): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write(`${what}: `);
  let text = '';
  for await (const chunk of process.stdin) {
    text += (chunk as Buffer).toString();
    if (process.stdin.isTTY && text.includes('\n')) break;
  }
  const line = text.split(/\r?\n/)[0] ?? '';
  if (line === '') throw new AgentError(`no ${what} on standard input`, EXIT.usage);
  return line;
}

/** Asks for the password on the terminal without echoing it. */
async function promptPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    throw new AgentError(
      'no password: use --password-stdin, set UPC_PASSWORD, or run on a terminal',
      EXIT.usage,
    );
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const output = rl as unknown as { _writeToOutput: (text: string) => void };
  process.stderr.write('password: ');
  output._writeToOutput = () => undefined; // typed characters are not shown
  const password = await new Promise<string>((resolve) => {
    rl.question('', resolve);
  });
  rl.close();
  process.stderr.write('\n');
  if (password === '') throw new AgentError('no password given', EXIT.usage);
  return password;
}

function print(values: Record<string, unknown>, data: unknown, text: string): void {
  process.stdout.write(values.json === true ? `${JSON.stringify(data, null, 2)}\n` : `${text}\n`);
}

async function runInSession(
  home: AgentHome,
  command: string[] | undefined,
  options: { admin?: boolean } = {},
): Promise<number> {
  const session = await home.requireSession();
  // The command needs the daemon running (it may still be starting), not answering.
  if (!(await daemonRunning(home))) await ensureDaemon(home);
  const before = session.namespace?.init;
  const namespace = await ensureNamespace(home, session, sessionPolicy(session));
  if (namespace && namespace.init !== before) await callDaemon(home, 'POST', '/reload');
  if (options.admin && !namespace) {
    throw new AgentError('--admin needs an isolated session (Linux, the agent running as root)', EXIT.usage);
  }
  const argv = command ?? [namespace?.shell ?? process.env.SHELL ?? '/bin/sh'];
  const [program, ...args] = argv as [string, ...string[]];
  const child = namespace
    ? runInNamespace(namespace, session, argv, { admin: options.admin === true })
    : spawn(program, args, {
        cwd: homeOf(session),
        stdio: 'inherit',
        env: { ...process.env, HOME: homeOf(session), UPC_SESSION: session.id, UPC_WORKSPACE: session.path },
      });
  // Ctrl-C and Ctrl-\ reach the command too (it is in our process group): it decides whether to
  // end, and upc waits for it either way rather than leave it running on the terminal.
  const ignore = () => undefined;
  process.on('SIGINT', ignore);
  process.on('SIGQUIT', ignore);
  return new Promise<number>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ENOENT'
          ? new AgentError(`command not found: ${program}`, 127)
          : new AgentError(`cannot run ${program}: ${error.message}`),
      );
    });
    child.once('exit', (code, signal) => {
      // Ended by a signal: 128 + its number, as a shell reports it.
      resolve(code ?? (signal ? 128 + constants.signals[signal] : 1));
    });
  }).finally(() => {
    process.off('SIGINT', ignore);
    process.off('SIGQUIT', ignore);
  });
}

function describeLogin(report: LoginReport, user: string, deviceName: string): string {
  const t = report.timings;
  const row = (label: string, value: number) =>
    `  ${label.padEnd(20)} ${String(Math.round(value)).padStart(7)} ms`;
  return [
    report.resumed
      ? `session resumed: ${user} on ${deviceName}, workspace "${report.workspace.name}"`
      : `logged in as ${user} on ${deviceName}: workspace "${report.workspace.name}" at version ${report.version ?? '(new, empty)'}`,
    report.isolation === 'namespace'
      ? `  your files: ${report.home}, inside the session (upc shell, upc exec; --admin for /opt and /etc)`
      : `  your files: ${report.home}`,
    `  restored ${report.restored.entries} entries, ${formatBytes(report.restored.bytes)}; fetched ${report.fetched.objects} objects, ${formatBytes(report.fetched.bytes)}`,
    row('gather information', t.gatherMs),
    row('fetch', t.fetchMs),
    row('materialize', t.materializeMs),
    row('mount', t.mountMs),
    row('desktop', t.desktopMs),
    row('total', t.totalMs),
  ].join('\n');
}

/** The session's isolation, for `upc status`: its namespaces, its user inside, its desktop. */
function describeIsolation(session: SessionRecord): {
  mode: 'namespace' | 'none';
  running: boolean;
  init: number | null;
  user: string | null;
  display: number | null;
  text: string;
} {
  const ns = session.namespace;
  if (!ns) {
    return {
      mode: 'none',
      running: false,
      init: null,
      user: null,
      display: null,
      text: '  isolated:  no (a folder on this PC)',
    };
  }
  const running = isRunning(ns);
  const desktop = ns.desktop ? `; desktop :${String(ns.desktop.display)} (${ns.desktop.kind})` : '';
  return {
    mode: 'namespace',
    running,
    init: ns.init,
    user: ns.user,
    display: ns.desktop?.display ?? null,
    text: `  isolated:  ${running ? `yes, init pid ${String(ns.init)}` : 'namespaces not running (the next upc exec starts them again)'}, as ${ns.user} (uid ${String(ns.uid)}) in ${ns.home}${desktop}`,
  };
}

function describeStatus(s: DaemonStatus): string {
  const lines = [
    `session ${s.session} (${s.mode}), workspace "${s.workspace.name}"`,
    `  files:     ${s.path}`,
    `  version:   ${s.version ?? '(none yet)'}`,
    `  state:     ${s.state}${s.offlineSince ? ` since ${s.offlineSince}; changes are queued on this PC and sent when the server is back` : ''}`,
    `  pending:   ${s.pendingChanges} changes, ${formatBytes(s.pendingBytes)}`,
    `  last sync: ${s.lastSync ?? 'not yet'}`,
    `  daemon:    pid ${s.pid}`,
  ];
  if (s.conflict) {
    lines.push(
      `  conflict:  ${s.conflict.holder} took the workspace at ${s.conflict.since}; your changes are kept as conflict versions`,
    );
  }
  if (s.lastError) lines.push(`  last error: ${s.lastError}`);
  lines.push(s.safeToLeave ? '  safe to leave: yes' : '  safe to leave: no (changes not yet on the server)');
  return lines.join('\n');
}
