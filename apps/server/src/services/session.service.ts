import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { SessionsEvent } from '@upc/protocol';
import { type Actor, isAdmin } from '../actor.js';
import type { EventStream } from '../middleware/event-stream.js';
import { type LiveSessionRow, SessionRepository } from '../repositories/session.repository.js';
import { TokenRepository } from '../repositories/token.repository.js';
import { toLiveSession } from './dto.js';

/** How often the live sessions are read again while anyone watches them. */
export const POLL_MS = 1000;
/** How often every open stream gets a comment, so that proxies and clients see it alive. */
export const KEEP_ALIVE_MS = 15_000;

interface Watcher {
  actor: Actor;
  stream: EventStream;
  /** The last `sessions` data this watcher got. */
  sent: string | undefined;
}

/**
 * The live sessions (workspaces whose lease a device holds now), streamed to the console.
 *
 * Nothing here is state another replica needs: leases and heartbeats are rows, and each server
 * process reads them once a second (one query, whoever and however many watch) while it has
 * watchers, and sends each of its own watchers the list they may see when it changed for them.
 * The same tick checks every watcher's token in one query: a revoked or expired token, or a
 * disabled user, ends the stream; a changed role changes what the stream shows.
 */
@Injectable()
export class SessionService implements OnModuleDestroy {
  private readonly logger = new Logger('Sessions');
  private readonly watchers = new Set<Watcher>();
  private poll: NodeJS.Timeout | undefined;
  private keepAlive: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private failing = false;
  private stopped = false;

  constructor(
    private readonly sessions: SessionRepository,
    private readonly tokens: TokenRepository,
  ) {}

  /**
   * Sends the sessions the actor may see (all for an admin, their own workspaces' for a user) as a
   * `sessions` event on the stream `open` starts, at once and then on every change, until either
   * side ends it. The first read comes before the stream opens, so that a failure is still an
   * ordinary error answer.
   */
  async watch(actor: Actor, open: () => EventStream): Promise<void> {
    const rows = await this.sessions.listLive();
    const stream = open();
    if (this.stopped) stream.close();
    if (stream.closed) return;
    const watcher: Watcher = { actor, stream, sent: undefined };
    this.watchers.add(watcher);
    stream.onClose(() => {
      this.watchers.delete(watcher);
      if (this.watchers.size === 0) this.stopTimers();
    });
    this.push(watcher, rows, new Map());
    this.startTimers();
  }

  /** How many streams this process has open. */
  get watching(): number {
    return this.watchers.size;
  }

  /** Ends every stream (the server is closing, and would otherwise wait for them). */
  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    this.stopTimers();
    for (const watcher of [...this.watchers]) watcher.stream.close();
    await this.refreshing;
  }

  private startTimers(): void {
    this.keepAlive ??= setInterval(() => {
      for (const watcher of this.watchers) watcher.stream.comment('keep-alive');
    }, KEEP_ALIVE_MS).unref();
    this.schedule();
  }

  private stopTimers(): void {
    clearInterval(this.keepAlive);
    clearTimeout(this.poll);
    this.keepAlive = undefined;
    this.poll = undefined;
  }

  /** The next tick, POLL_MS after the last one finished (ticks never overlap). */
  private schedule(): void {
    if (this.poll || this.refreshing || this.stopped || this.watchers.size === 0) return;
    this.poll = setTimeout(() => {
      this.poll = undefined;
      this.refreshing = this.refresh().finally(() => {
        this.refreshing = undefined;
        this.schedule();
      });
    }, POLL_MS).unref();
  }

  private async refresh(): Promise<void> {
    const watchers = [...this.watchers];
    if (watchers.length === 0) return;
    let rows: LiveSessionRow[];
    let valid: Map<string, Actor['role']>;
    try {
      [rows, valid] = await Promise.all([
        this.sessions.listLive(),
        this.tokens.findValid([...new Set(watchers.map((w) => w.actor.tokenId))]),
      ]);
    } catch (error) {
      // The streams stay open and catch up once the database answers again; said once, not every tick.
      if (!this.failing) this.logger.warn(`cannot read the live sessions: ${(error as Error).message}`);
      this.failing = true;
      return;
    }
    if (this.failing) this.logger.log('reading the live sessions again');
    this.failing = false;
    const data = new Map<string, string>();
    for (const watcher of watchers) {
      if (watcher.stream.closed) continue;
      const role = valid.get(watcher.actor.tokenId);
      if (role === undefined) {
        watcher.stream.close();
        continue;
      }
      if (role !== watcher.actor.role) watcher.actor = { ...watcher.actor, role };
      this.push(watcher, rows, data);
    }
  }

  /** Sends the watcher its list if it changed since the last one it got. `data` caches it per viewer. */
  private push(watcher: Watcher, rows: LiveSessionRow[], data: Map<string, string>): void {
    const viewer = isAdmin(watcher.actor) ? '*' : watcher.actor.id;
    let json = data.get(viewer);
    if (json === undefined) {
      const visible = viewer === '*' ? rows : rows.filter((row) => row.ownerId === viewer);
      json = JSON.stringify({ sessions: visible.map(toLiveSession) } satisfies SessionsEvent);
      data.set(viewer, json);
    }
    if (json !== watcher.sent && watcher.stream.send('sessions', json)) watcher.sent = json;
  }
}
