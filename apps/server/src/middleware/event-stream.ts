import type { FastifyReply } from 'fastify';

/** One client's open `text/event-stream` answer (server-sent events). */
export interface EventStream {
  /** True once the stream ended, from either side. */
  readonly closed: boolean;
  /**
   * Writes one event whose data is a single line (JSON). False when it was not written: the stream
   * is closed, or the client is not reading and earlier writes are still buffered.
   */
  send(event: string, data: string): boolean;
  /** Writes a comment line, which clients ignore: keeps proxies from timing the stream out. */
  comment(text: string): void;
  /** Ends the stream; the client sees it end. */
  close(): void;
  /** Calls `listener` once when the stream ends (at once if it has ended already). */
  onClose(listener: () => void): void;
}

/**
 * Takes the answer over from Fastify and Nest (`reply.hijack()`) and starts an event stream on the
 * raw response: 200, never cached, never buffered by a proxy (`X-Accel-Buffering: no`). Headers
 * already set (helmet's) are kept. The server has no compression plugin, so nothing buffers it.
 * A HEAD request gets the headers and an ended stream.
 */
export function openEventStream(reply: FastifyReply): EventStream {
  reply.hijack();
  const raw = reply.raw;
  const listeners: (() => void)[] = [];
  let closed = false;
  const ended = () => {
    if (closed) return;
    closed = true;
    for (const listener of listeners.splice(0)) listener();
  };
  raw.on('close', ended);
  // A write racing the client's disconnect must not become an unhandled 'error' event.
  raw.on('error', ended);
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) raw.setHeader(name, value);
  }
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
  });
  raw.flushHeaders();
  if (reply.request.method === 'HEAD') {
    raw.end();
    ended();
  }
  const writable = () => !closed && !raw.destroyed && !raw.writableEnded;
  return {
    get closed() {
      return !writable();
    },
    send(event, data) {
      if (!writable() || raw.writableNeedDrain) return false;
      raw.write(`event: ${event}\ndata: ${data}\n\n`);
      return true;
    },
    comment(text) {
      if (writable() && !raw.writableNeedDrain) raw.write(`: ${text}\n\n`);
    },
    close() {
      if (writable()) raw.end();
      ended();
    },
    onClose(listener) {
      if (closed) listener();
      else listeners.push(listener);
    },
  };
}
