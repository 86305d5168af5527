import { appendFileSync, existsSync } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalRepository } from '@upc/image';
import { UpcClient } from '@upc/protocol';
import { type FSWatcher, watch } from 'chokidar';
import { serve } from './ipc.js';
import { LeaseKeeper } from './lease.js';
import { FileRemote, type Remote, ServerRemote } from './remote.js';
import { isTransient } from './retry.js';
import { AgentHome, writeFileAtomic } from './state.js';
import { Syncer } from './sync.js';

/** A change is committed at most this long after the watcher reports it. */
const DEBOUNCE_MS = 150;
/** Waits between tries while the server cannot be reached. */
const RETRY_MS = [500, 1000, 2000, 4000, 8000, 15000];
const RESCAN_MS = 5 * 60_000;
const HEARTBEAT_MS = 30_000;
/** How often the session's state is looked at, to report a change of it to the server at once. */
const REPORT_MS = 2_000;
/** A pause (`upc restore`) ends by itself after this, should its command die meanwhile. */
const PAUSE_LIMIT_MS = 5 * 60_000;

/**
 * The session's sync daemon: watches the workspace folder, commits each change within about a
 * second, keeps the lease, and answers the CLI on its socket. Started by `upc login`/`upc run`;
 * ended by `upc logout`. `--recover` makes its first commit a `recovery` version (the daemon before
 * it died with changes not yet committed).
 */
async function main(homeDir: string, recover: boolean): Promise<void> {
  const home = new AgentHome(homeDir);
  const log = (message: string) => {
    appendFileSync(home.daemonLog, `${new Date().toISOString()} ${message}\n`);
  };
  const session = await home.requireSession();
  const repo = await LocalRepository.open(home.objectsDir);
  let remote: Remote;
  let lease: LeaseKeeper | undefined;
  let client: UpcClient | undefined;
  if (session.mode === 'server' && session.server) {
    client = new UpcClient({ baseUrl: session.server.url, token: session.server.token });
    const server = session.server;
    remote = new ServerRemote(client, () => ({
      workspaceId: session.workspace.id,
      deviceId: server.deviceId,
      fencingToken: server.fencingToken,
    }));
    lease = new LeaseKeeper(client, home, session, log);
  } else if (session.file) {
    remote = await FileRemote.open(session.file, { workspace: session.workspace.name });
  } else {
    throw new Error('the session names neither a server nor a file');
  }
  const syncer = await Syncer.open(
    home,
    session,
    repo,
    remote,
    lease ? lease.onLeaseLost : () => Promise.resolve({ holder: 'another program' }),
    log,
  );
  syncer.recovering = recover;

  let timer: NodeJS.Timeout | undefined;
  /** While a restore swaps the session's files, half-swapped states must not be committed. */
  let pausedUntil = 0;
  let failures = 0;
  let stopping = false;
  const schedule = (delay: number) => {
    if (timer || stopping) return;
    timer = setTimeout(() => {
      timer = undefined;
      void runSync();
    }, delay);
  };
  const runSync = async (): Promise<void> => {
    if (stopping) return;
    if (pausedUntil > Date.now()) {
      schedule(pausedUntil - Date.now()); // changes wait until the pause ends
      return;
    }
    try {
      await syncer.sync('sync');
      failures = 0;
      if (syncer.dirty) schedule(DEBOUNCE_MS);
    } catch (error) {
      log(`sync failed: ${error instanceof Error ? error.message : String(error)}`);
      if (isTransient(error)) {
        schedule(RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)] ?? 15000);
      } else if ((error as { status?: number }).status !== 401) {
        schedule(RETRY_MS.at(-1) ?? 15000);
      }
    }
  };

  const root = session.path;
  let renewal: NodeJS.Timeout | undefined;
  const timers = [
    setInterval(() => {
      syncer.noteUnknownChanges();
      schedule(0);
    }, RESCAN_MS),
    setInterval(() => {
      // The session was wiped under us (by hand, or a test's cleanup): nothing left to sync.
      if (!existsSync(home.sessionFile)) void shutdown(0);
    }, 5000),
  ];
  if (lease && client && session.server) {
    const deviceId = session.server.deviceId;
    const keeper = lease;
    const api = client;
    // Renewed at a third of its time to live, so two renewals in a row can fail before it lapses.
    const renew = () => {
      keeper.renew().then(
        (outcome) => {
          if (outcome === 'held') renewal = setTimeout(renew, keeper.renewEveryMs);
          else syncer.enterConflict(outcome.holder);
        },
        (error: unknown) => {
          log(`lease renewal failed: ${(error as Error).message}`);
          renewal = setTimeout(renew, Math.min(keeper.renewEveryMs, 2000));
        },
      );
    };
    renewal = setTimeout(renew, keeper.renewEveryMs);
    // What the console shows of this session: its state and what is not yet durable. Sent when
    // that changes (looked at every REPORT_MS) and every HEARTBEAT_MS in any case.
    let reported = '';
    let reportedAt = 0;
    timers.push(
      setInterval(() => {
        const { state, pendingChanges, pendingBytes } = status();
        const now = JSON.stringify([state, pendingChanges, pendingBytes]);
        if (now === reported && Date.now() - reportedAt < HEARTBEAT_MS) return;
        reported = now;
        reportedAt = Date.now();
        api.heartbeat(deviceId, { state, pendingChanges, pendingBytes }).catch(() => undefined);
      }, REPORT_MS),
    );
  }

  const status = () => ({
    pid: process.pid,
    session: session.id,
    mode: session.mode,
    workspace: session.workspace,
    version: session.committed.versionId,
    root: session.committed.root,
    path: root,
    ...(session.conflict ? { conflict: session.conflict } : {}),
    ...syncer.state(),
    recovered: syncer.recoveredVersion,
    uploading: remote instanceof ServerRemote ? remote.uploading : null,
    safeToLeave: !syncer.dirty && syncer.state().state === 'clean',
  });

  const stop = async (kind: 'logout' | 'sync') => {
    stopping = true;
    if (timer) clearTimeout(timer);
    const result = await syncer.sync(kind === 'logout' && !session.conflict ? 'logout' : 'sync', {
      full: true,
      always: kind === 'logout' && !session.conflict,
    });
    await syncer.saveCache(true);
    return result;
  };

  let answered: () => void = () => undefined;
  const firstAnswer = new Promise<void>((resolve) => {
    answered = resolve;
  });
  const server = await serve(home.socketPath, {
    'GET /status': () => {
      answered();
      return Promise.resolve({ status: 200, body: status() });
    },
    'POST /sync': async (body) => {
      while (pausedUntil > Date.now()) await sleep(100);
      try {
        const kind = body.kind === 'checkpoint' ? 'checkpoint' : 'sync';
        const result = await patiently(waitOf(body), () => syncer.sync(kind, { full: true }));
        return { status: 200, body: { ...result, ...status() } };
      } catch (error) {
        return { status: failureStatus(error), body: { error: (error as Error).message, ...status() } };
      }
    },
    'POST /pause': () => {
      pausedUntil = Date.now() + PAUSE_LIMIT_MS;
      return Promise.resolve({ status: 200, body: status() });
    },
    'POST /resume': async (body) => {
      pausedUntil = 0;
      if (body.commit !== 'checkpoint') {
        schedule(0);
        return { status: 200, body: status() };
      }
      // Queued before any timer can run: the swapped-in files become one checkpoint version.
      try {
        const result = await syncer.sync('checkpoint', { full: true });
        return { status: 200, body: { ...result, ...status() } };
      } catch (error) {
        schedule(RETRY_MS[0] ?? 500);
        return { status: failureStatus(error), body: { error: (error as Error).message, ...status() } };
      }
    },
    'POST /reload': async () => {
      const fresh = await home.requireSession();
      // The session's namespaces may have been rebuilt (a restore, a reboot): keep their record.
      if (fresh.namespace) session.namespace = fresh.namespace;
      if (fresh.server && session.server && client) {
        session.server.token = fresh.server.token;
        client.token = fresh.server.token;
      }
      schedule(0);
      return { status: 200, body: status() };
    },
    'POST /stop': async (body) => {
      const kind = body.logout === true ? 'logout' : 'sync';
      try {
        const result = await patiently(waitOf(body), () => stop(kind));
        setImmediate(() => void shutdown(0));
        return { status: 200, body: { ...result, ...status() } };
      } catch (error) {
        stopping = false;
        schedule(RETRY_MS[0] ?? 500);
        return { status: failureStatus(error), body: { error: (error as Error).message, ...status() } };
      }
    },
  });
  // Only this user's commands may talk to the daemon (a Windows pipe has its own ACL).
  if (process.platform !== 'win32') await chmod(home.socketPath, 0o600);
  await writeFileAtomic(
    home.daemonFile,
    JSON.stringify({ pid: process.pid, socket: home.socketPath }) + '\n',
  );
  log(`daemon ${process.pid} serving ${home.socketPath}`);

  // The watcher's first scan keeps this process busy for a while on a big workspace, so it starts
  // once the command that started the daemon has had its answer (or after a second at most).
  let watcher: FSWatcher | undefined;
  const startWatching = () => {
    if (watcher || stopping) return;
    watcher = watch(root, {
      ignoreInitial: true,
      atomic: false,
      followSymlinks: false,
      ignored: (path: string) => syncer.isExcluded(relative(root, path).split(sep).join('/')),
    });
    watcher.on('all', (_event, path) => {
      syncer.noteChange(relative(root, path).split(sep).join('/'));
      schedule(DEBOUNCE_MS);
    });
    watcher.on('error', (error) => {
      log(`watcher: ${error instanceof Error ? error.message : String(error)}`);
      syncer.noteUnknownChanges();
      schedule(DEBOUNCE_MS);
    });
    watcher.once('ready', () => {
      // Anything written before the watcher was ready is found by this first, full snapshot.
      log(`watching ${root}`);
      syncer.noteUnknownChanges();
      schedule(0);
    });
  };
  firstAnswer.then(
    () => setImmediate(startWatching),
    () => undefined,
  );
  setTimeout(startWatching, 1000).unref();

  const shutdown = async (code: number) => {
    for (const t of timers) clearInterval(t);
    clearTimeout(renewal);
    if (timer) clearTimeout(timer);
    await watcher?.close();
    server.close();
    await rm(home.socketPath, { force: true });
    await rm(home.daemonFile, { force: true });
    repo.close();
    if (remote instanceof FileRemote) await remote.close();
    log(`daemon ${process.pid} stopped`);
    process.exit(code);
  };
  const onSignal = () => {
    // The PC is shutting down: save what can be saved; what cannot stays on disk for recovery.
    stop('sync').then(
      () => void shutdown(0),
      () => void shutdown(1),
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}

/** How long a command asked to keep trying through network failures (default: one try). */
function waitOf(body: Record<string, unknown>): number {
  return typeof body.waitMs === 'number' && body.waitMs > 0 ? Math.min(body.waitMs, 3_600_000) : 0;
}

/**
 * Runs `attempt`, trying again after transient failures until `waitMs` has passed: a server that
 * restarts or a network that blips for a few seconds does not fail `upc sync` or `upc logout`.
 */
async function patiently<T>(waitMs: number, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await attempt();
    } catch (error) {
      if (!isTransient(error) || Date.now() + delay > deadline) throw error;
      await sleep(delay);
    }
  }
}

/** How a failed sync is answered: 503 the server is unreachable, 401 signed out, 500 otherwise. */
function failureStatus(error: unknown): number {
  if (isTransient(error)) return 503;
  return (error as { status?: number }).status === 401 ? 401 : 500;
}

/**
 * Started early by a login, the daemon has loaded its code by the time the session exists; it
 * waits for session.json (the login's last step) and gives up if the login does not get there.
 */
async function sessionWritten(home: AgentHome): Promise<void> {
  for (let waited = 0; waited < 120_000; waited += 10) {
    if (existsSync(home.sessionFile)) return;
    if (!existsSync(home.sessionDir)) break; // the login failed and wiped its folder
    await sleep(10);
  }
  throw new Error('no session was written: the login that started this daemon did not finish');
}

/**
 * A spare, started by the resident service before anyone logs in, waits for the service to say a
 * session is written (a line on its standard input); it ends if the service goes first.
 */
function begun(): Promise<void> {
  // Its code is loaded (the imports above): the service may count on it now. Nothing else is
  // ever written to this pipe, and a service gone meanwhile is no error.
  process.stdout.on('error', () => undefined);
  process.stdout.write('ready\n');
  return new Promise((resolve) => {
    let said = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      said += chunk;
      if (said.includes('\n')) {
        process.stdin.pause();
        resolve();
      }
    });
    process.stdin.once('end', () => {
      if (said.includes('\n')) return;
      process.stderr.write(`upc daemon: spare ${String(process.pid)} ends: its service is gone\n`);
      process.exit(0);
    });
  });
}

const [homeDir, ...flags] = process.argv.slice(2);
if (!homeDir) {
  process.stderr.write('usage: daemon.js UPC_HOME [--recover] [--await-session | --spare]\n');
  process.exit(2);
}
const ready = flags.includes('--spare')
  ? begun()
  : flags.includes('--await-session')
    ? sessionWritten(new AgentHome(homeDir))
    : Promise.resolve();
ready
  .then(() => main(homeDir, flags.includes('--recover')))
  .catch((error: unknown) => {
    process.stderr.write(
      `upc daemon: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  });
