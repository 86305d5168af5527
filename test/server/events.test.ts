import { randomUUID } from 'node:crypto';
import { type Device, type LiveSession, SessionsEvent, UpcClient } from '@upc/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SessionService } from '../../apps/server/src/services/session.service.js';
import { commitTree, workspaceWithLease } from '../support/fixtures.js';
import { problemOf } from '../support/problems.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let admin: UpcClient;
let erin: UpcClient;
let frank: UpcClient;
let keepAlive: EventReader;
beforeAll(async () => {
  server = await startTestServer();
  admin = await server.admin();
  ({ client: erin } = await server.user('erin'));
  ({ client: frank } = await server.user('frank'));
  // Open for the whole file: the last test checks that it got a keep-alive comment meanwhile.
  keepAlive = await openEvents(server.url, admin.token);
});
afterAll(async () => {
  await keepAlive.close();
  // An aborted fetch makes undici open a spare connection at once, which never sends a request:
  // Node's close() does not count it idle and would wait about a minute for it.
  server.server.app.getHttpServer().closeAllConnections();
  await server.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

interface SseMessage {
  event: string | undefined;
  data: string;
}

/** `GET /events` read with fetch, as the console does: its events and comments, one at a time. */
interface EventReader {
  response: Response;
  comments: string[];
  /** The next `sessions` event, or undefined if none comes within `timeoutMs`; throws if the stream ends. */
  next(timeoutMs?: number): Promise<LiveSession[] | undefined>;
  /** Reads `sessions` events until one satisfies `match`; fails after `timeoutMs`. */
  until(match: (sessions: LiveSession[]) => boolean, timeoutMs?: number): Promise<LiveSession[]>;
  /** Resolves when the server ends the stream; fails after `timeoutMs`. */
  ended(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

async function openEvents(url: string, token: string | undefined): Promise<EventReader> {
  const abort = new AbortController();
  const response = await fetch(`${url}/api/v1/events`, {
    headers: { authorization: `Bearer ${token ?? ''}`, accept: 'text/event-stream' },
    signal: abort.signal,
  });
  if (!response.body) throw new Error('no body');
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const comments: string[] = [];
  const messages: SseMessage[] = [];
  let buffer = '';
  let done = false;
  let pending: Promise<void> | undefined;
  // One read at a time, kept across timeouts so that no chunk is lost.
  const readMore = () =>
    (pending ??= reader.read().then(
      ({ value, done: end }) => {
        pending = undefined;
        if (end) done = true;
        buffer += value ?? '';
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const message: SseMessage = { event: undefined, data: '' };
          let isMessage = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('event: ')) message.event = line.slice(7);
            else if (line.startsWith('data: ')) {
              message.data += line.slice(6);
              isMessage = true;
            }
          }
          if (isMessage) messages.push(message);
        }
      },
      () => {
        pending = undefined;
        done = true;
      },
    ));
  const nextMessage = async (timeoutMs: number): Promise<SseMessage | undefined> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = messages.shift();
      if (message) return message;
      if (done) throw new Error('the stream ended');
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        readMore(),
        new Promise((resolve) => {
          timer = setTimeout(resolve, left);
        }),
      ]);
      clearTimeout(timer);
    }
  };
  const next = async (timeoutMs = 3000) => {
    const message = await nextMessage(timeoutMs);
    if (!message) return undefined;
    expect(message.event).toBe('sessions');
    return SessionsEvent.parse(JSON.parse(message.data)).sessions;
  };
  return {
    response,
    comments,
    next,
    async until(match, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      const seen: LiveSession[][] = [];
      while (Date.now() < deadline) {
        const sessions = await next(deadline - Date.now());
        if (sessions === undefined) break;
        if (match(sessions)) return sessions;
        seen.push(sessions);
      }
      throw new Error(`no matching sessions event in ${timeoutMs} ms; got ${JSON.stringify(seen)}`);
    },
    async ended(timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      while (!done) {
        if (Date.now() > deadline) throw new Error(`the stream did not end in ${timeoutMs} ms`);
        await nextMessage(deadline - Date.now()).catch(() => undefined);
      }
    },
    async close() {
      abort.abort();
      await reader.cancel().catch(() => undefined);
    },
  };
}

const pc = (client: UpcClient, name: string) =>
  client.registerDevice({ machineId: randomUUID(), name, os: 'linux', agentVersion: 'test' });

/** POST heartbeat as an older agent sends it: no body, no content type. */
const bareHeartbeat = (client: UpcClient, deviceId: string) =>
  fetch(`${server.url}/api/v1/devices/${deviceId}/heartbeat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${client.token ?? ''}` },
  });

const watchers = () => server.server.app.get(SessionService).watching;
const sessionOf = (sessions: LiveSession[], workspaceId: string) =>
  sessions.find((s) => s.workspace.id === workspaceId);

describe('POST /devices/:id/heartbeat', () => {
  it('takes an empty body from an older agent, and a report from a newer one', async () => {
    const device = await pc(erin, 'beat');
    const bare = await bareHeartbeat(erin, device.id);
    expect(bare.status).toBe(200);
    const seen = (await bare.json()) as Device;
    expect(seen.id).toBe(device.id);
    expect(Date.parse(seen.lastSeenAt)).toBeGreaterThanOrEqual(Date.parse(device.lastSeenAt));
    expect((await erin.heartbeat(device.id)).id).toBe(device.id); // `{}`
    const reported = await erin.heartbeat(device.id, {
      state: 'uploading',
      pendingChanges: 3,
      pendingBytes: 5_000_000_000,
    });
    expect(Date.parse(reported.lastSeenAt)).toBeGreaterThanOrEqual(Date.parse(seen.lastSeenAt));
  });

  it('refuses a malformed report and another user’s device', async () => {
    const device = await pc(erin, 'beat-2');
    const negative = await problemOf(erin.heartbeat(device.id, { pendingBytes: -1 }));
    expect(negative.status).toBe(400);
    expect(negative.code).toBe('validation_failed');
    expect(negative.problem.issues).toEqual([expect.objectContaining({ field: 'pendingBytes' })]);
    expect((await problemOf(erin.heartbeat(device.id, { state: 'x'.repeat(33) }))).code).toBe(
      'validation_failed',
    );
    expect((await problemOf(frank.heartbeat(device.id, { state: 'idle' }))).code).toBe('not_found');
    expect((await bareHeartbeat(frank, device.id)).status).toBe(404);
  });
});

describe('GET /events', () => {
  it('needs a valid token', async () => {
    const none = await fetch(`${server.url}/api/v1/events`);
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toContain('application/problem+json');
    expect(((await none.json()) as { code: string }).code).toBe('unauthenticated');
    const bad = await fetch(`${server.url}/api/v1/events`, { headers: { authorization: 'Bearer nope' } });
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { code: string }).code).toBe('token_revoked');
    // HEAD gets the headers and an ended stream, and nothing stays open.
    const baseline = watchers();
    const head = await fetch(`${server.url}/api/v1/events`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${erin.token ?? ''}` },
    });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(watchers()).toBe(baseline);
  });

  it('streams the live sessions at once and on every change: a user sees their own, an admin all', async () => {
    const adminEvents = await openEvents(server.url, admin.token);
    const erinEvents = await openEvents(server.url, erin.token);
    const frankEvents = await openEvents(server.url, frank.token);
    try {
      expect(adminEvents.response.status).toBe(200);
      expect(adminEvents.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(adminEvents.response.headers.get('cache-control')).toBe('no-store');
      expect(adminEvents.response.headers.get('x-accel-buffering')).toBe('no');
      expect(adminEvents.response.headers.get('x-content-type-options')).toBe('nosniff');
      const before = await adminEvents.next();
      expect(before).toBeDefined();
      expect(await erinEvents.next()).toEqual([]);
      expect(await frankEvents.next()).toEqual([]);

      // erin signs in on a PC: her stream and the admin's show it within a tick or two.
      const started = Date.now();
      const mine = await workspaceWithLease(erin, 'live-erin');
      const erinSees = await erinEvents.until((s) => sessionOf(s, mine.workspace.id) !== undefined);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(erinSees).toEqual([
        {
          workspace: { id: mine.workspace.id, name: 'live-erin' },
          user: { id: mine.lease.userId, username: 'erin' },
          device: { id: mine.device.id, name: mine.device.name },
          since: mine.lease.acquiredAt,
          lastSync: null,
          pendingBytes: null,
          state: null,
          lastSeenAt: expect.any(String) as string,
        },
      ]);
      await adminEvents.until((s) => sessionOf(s, mine.workspace.id) !== undefined);

      // frank's list did not change, so he got nothing; then his own session shows to him alone.
      expect(await frankEvents.next(1200)).toBeUndefined();
      const his = await workspaceWithLease(frank, 'live-frank');
      const frankSees = await frankEvents.until((s) => s.length > 0);
      expect(frankSees.map((s) => s.workspace.id)).toEqual([his.workspace.id]);
      const adminSees = await adminEvents.until((s) => sessionOf(s, his.workspace.id) !== undefined);
      expect(sessionOf(adminSees, mine.workspace.id)).toBeDefined();
      expect(await erinEvents.next(1200)).toBeUndefined();

      // What the agents report with their heartbeats shows, for every device, to the admin.
      await erin.heartbeat(mine.device.id, { state: 'uploading', pendingChanges: 2, pendingBytes: 4096 });
      await frank.heartbeat(his.device.id, { state: 'clean', pendingChanges: 0, pendingBytes: 0 });
      const reported = await adminEvents.until(
        (s) =>
          sessionOf(s, mine.workspace.id)?.state === 'uploading' &&
          sessionOf(s, his.workspace.id)?.state === 'clean',
      );
      expect(sessionOf(reported, mine.workspace.id)).toMatchObject({ pendingBytes: 4096 });
      expect(sessionOf(reported, his.workspace.id)).toMatchObject({ pendingBytes: 0 });
      const erinReported = await erinEvents.until((s) => s[0]?.state === 'uploading');
      expect(erinReported).toHaveLength(1);
      expect(erinReported[0]?.pendingBytes).toBe(4096);

      // An empty heartbeat (an older agent) moves lastSeenAt and keeps the last report.
      const lastSeen = sessionOf(reported, mine.workspace.id)?.lastSeenAt ?? '';
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect((await bareHeartbeat(erin, mine.device.id)).status).toBe(200);
      const bare = await erinEvents.until((s) => s[0]?.lastSeenAt !== lastSeen);
      expect(bare[0]).toMatchObject({ state: 'uploading', pendingBytes: 4096 });

      // A commit by the holding device is its last sync.
      const version = await commitTree(erin, mine, null);
      const synced = await erinEvents.until((s) => s[0]?.lastSync !== null);
      expect(synced[0]?.lastSync).toBe(version.createdAt);

      // Releasing ends the session.
      await erin.releaseLease(mine.workspace.id, mine.device.id, mine.lease.fencingToken);
      expect(await erinEvents.until((s) => s.length === 0)).toEqual([]);
      await adminEvents.until((s) => sessionOf(s, mine.workspace.id) === undefined);
      await frank.releaseLease(his.workspace.id, his.device.id, his.lease.fencingToken);
      await frankEvents.until((s) => s.length === 0);
    } finally {
      await Promise.all([adminEvents.close(), erinEvents.close(), frankEvents.close()]);
    }
  });

  it('drops a session whose lease expires', async () => {
    const device = await pc(erin, 'expiring');
    const workspace = await erin.createWorkspace({ name: 'expiring' });
    const events = await openEvents(server.url, erin.token);
    try {
      expect(await events.next()).toEqual([]);
      await erin.acquireLease(workspace.id, device.id, 5);
      await events.until((s) => s.length === 1);
      await events.until((s) => s.length === 0, 8000);
    } finally {
      await events.close();
    }
  });

  it('ends the stream at the next tick once its token is revoked, or its user disabled', async () => {
    const signedIn = new UpcClient({ baseUrl: server.url });
    await signedIn.login('erin', 'erin-password');
    const events = await openEvents(server.url, signedIn.token);
    expect(await events.next()).toBeDefined();
    await signedIn.logout();
    await events.ended(3000);

    const { client: gina, id } = await server.user('gina');
    const hers = await openEvents(server.url, gina.token);
    expect(await hers.next()).toEqual([]);
    await admin.updateUser(id, { disabled: true });
    await hers.ended(3000);
  });

  it('forgets a client that goes away, without an error', async () => {
    const errors = vi.spyOn(process.stderr, 'write');
    const baseline = watchers();
    const streams = await Promise.all([1, 2, 3].map(() => openEvents(server.url, erin.token)));
    for (const stream of streams) await stream.next();
    expect(watchers()).toBe(baseline + 3);
    await Promise.all(streams.map((stream) => stream.close()));
    await vi.waitFor(() => {
      expect(watchers()).toBe(baseline);
    });
    // A tick or two with the clients gone.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(errors.mock.calls.map(([chunk]) => String(chunk)).join('')).not.toMatch(/error/i);
  });

  it('ends open streams when the server closes, without waiting for the clients', async () => {
    const other = await startTestServer();
    const events = await openEvents(other.url, (await other.admin()).token);
    expect(await events.next()).toEqual([]);
    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(3000);
    await events.ended(1000);
  });

  it('sends a keep-alive comment every 15 s', async () => {
    // The stream opened before the first test: read what is left of its first 15 s.
    const deadline = Date.now() + 17_000;
    while (!keepAlive.comments.includes('keep-alive') && Date.now() < deadline) await keepAlive.next(250);
    expect(keepAlive.comments).toContain('keep-alive');
  }, 20_000);
});
