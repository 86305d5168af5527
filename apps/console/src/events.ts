import { SessionsEvent, type LiveSession } from '@upc/protocol';
import { useEffect, useState } from 'react';
import { SseParser } from './sse-parser.js';

export type StreamStatus =
  | { state: 'connecting' }
  | { state: 'live' }
  | { state: 'reconnecting'; at: number; reason: string }
  | { state: 'closed'; reason: string };

export interface EventStreamOptions {
  url: string;
  token: string | undefined;
  onEvent: (event: string, data: string) => void;
  onStatus: (status: StreamStatus) => void;
  /** The server said 401: the token is no longer good. The stream stops. */
  onUnauthorized: () => void;
}

const FIRST_DELAY_MS = 1_000;
const MAX_DELAY_MS = 30_000;
/** No bytes at all (not even a keep-alive comment) for this long: the connection is taken as dead. */
const SILENCE_MS = 45_000;

class StreamEnded extends Error {}

/**
 * Reads a server-sent event stream with fetch, which (unlike EventSource) can send the Authorization
 * header. When the stream ends or fails it reconnects after 1 s, 2 s, 4 s … up to 30 s (with jitter,
 * or what the server's `retry:` asked for), starting over at 1 s once a connection has delivered an event.
 * A connection that sends nothing, not even a `:` keep-alive comment, for 45 s is taken as dead and
 * replaced. A 401 ends it for good (the session is over), and so do 403 and 404 (not for this user, or
 * no such endpoint on this server). Returns a function that stops it.
 */
export function openEventStream(options: EventStreamOptions): () => void {
  const stop = new AbortController();
  // A function, not the property, so that checks after an await are not narrowed away.
  const stopped = () => stop.signal.aborted;
  let attempt = 0;
  let lastEventId: string | undefined;
  let retryMs: number | undefined;

  const connectOnce = async (): Promise<void> => {
    const connection = new AbortController();
    const onStop = () => {
      connection.abort();
    };
    stop.signal.addEventListener('abort', onStop);
    let silence: ReturnType<typeof setTimeout> | undefined;
    const armWatchdog = () => {
      clearTimeout(silence);
      silence = setTimeout(() => {
        connection.abort(new StreamEnded('no data from the server for 45 s'));
      }, SILENCE_MS);
    };
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      armWatchdog();
      const res = await fetch(options.url, {
        headers,
        cache: 'no-store',
        signal: connection.signal,
      });
      if (res.status === 401) {
        options.onUnauthorized();
        stop.abort();
        return;
      }
      if (res.status === 403 || res.status === 404) {
        options.onStatus({
          state: 'closed',
          reason: res.status === 403 ? 'not available to this user' : 'not available on this server',
        });
        stop.abort();
        return;
      }
      if (!res.ok || !res.body) throw new StreamEnded(`the server answered ${res.status}`);
      options.onStatus({ state: 'live' });
      const parser = new SseParser();
      const decoder = new TextDecoder();
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        armWatchdog();
        for (const event of parser.feed(decoder.decode(value, { stream: true }))) {
          lastEventId = event.id;
          attempt = 0;
          options.onEvent(event.event, event.data);
        }
        retryMs = parser.retryMs ?? retryMs;
      }
      throw new StreamEnded('the server closed the stream');
    } finally {
      clearTimeout(silence);
      stop.signal.removeEventListener('abort', onStop);
    }
  };

  const run = async () => {
    while (!stopped()) {
      let reason: string;
      try {
        await connectOnce();
        return;
      } catch (error) {
        if (stopped()) return;
        reason =
          error instanceof StreamEnded
            ? error.message
            : error instanceof DOMException && error.name === 'AbortError'
              ? 'the connection was interrupted'
              : 'the server cannot be reached';
      }
      const backoff = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt);
      const delay = retryMs ?? Math.round(backoff * (0.75 + Math.random() * 0.5));
      attempt++;
      options.onStatus({ state: 'reconnecting', at: Date.now() + delay, reason });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        stop.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
      if (!stopped()) options.onStatus({ state: 'connecting' });
    }
  };

  options.onStatus({ state: 'connecting' });
  void run();
  return () => {
    stop.abort();
  };
}

export interface LiveSessions {
  /** Undefined until the first `sessions` event. */
  sessions: LiveSession[] | undefined;
  status: StreamStatus;
}

/** The live sessions from `GET /api/v1/events`, kept current by its `sessions` events. */
export function useLiveSessions(token: string | undefined, onUnauthorized: () => void): LiveSessions {
  const [sessions, setSessions] = useState<LiveSession[] | undefined>(undefined);
  const [status, setStatus] = useState<StreamStatus>({ state: 'connecting' });
  useEffect(() => {
    return openEventStream({
      url: `${window.location.origin}/api/v1/events`,
      token,
      onStatus: setStatus,
      onUnauthorized,
      onEvent: (event, data) => {
        if (event !== 'sessions') return;
        try {
          setSessions(SessionsEvent.parse(JSON.parse(data)).sessions);
        } catch (error) {
          console.warn('upc console: ignored a sessions event that does not parse', error);
        }
      },
    });
  }, [token, onUnauthorized]);
  return { sessions, status };
}
