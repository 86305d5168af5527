/**
 * A parser for the `text/event-stream` framing (the server-sent events format of the HTML standard),
 * fed text as it arrives. Lines end with LF, CRLF or CR; a blank line ends an event; a line starting
 * with `:` is a comment (the server's keep-alive); `field: value` lines set the event's fields.
 */
export interface ServerSentEvent {
  /** The `event:` field; "message" when the event has none. */
  event: string;
  /** The `data:` lines, joined with "\n". */
  data: string;
  /** The `id:` field, if the event (or an earlier one) set it. */
  id: string | undefined;
}

export class SseParser {
  private buffer = '';
  private dataLines: string[] = [];
  private eventType = '';
  private lastEventId: string | undefined;
  /** The reconnection delay the server asked for with a `retry:` line, in milliseconds. */
  retryMs: number | undefined;

  /** Parses `chunk` and returns the events it completed. */
  feed(chunk: string): ServerSentEvent[] {
    this.buffer += chunk;
    const events: ServerSentEvent[] = [];
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      if (cr === -1 && lf === -1) break;
      let end: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
        if (cr === this.buffer.length - 1) break;
        end = cr;
        next = this.buffer[cr + 1] === '\n' ? cr + 2 : cr + 1;
      } else {
        end = lf;
        next = lf + 1;
      }
      const event = this.line(this.buffer.slice(start, end));
      if (event) events.push(event);
      start = next;
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  private line(line: string): ServerSentEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.dataLines.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
    return undefined;
  }

  private dispatch(): ServerSentEvent | undefined {
    const dataLines = this.dataLines;
    const event = this.eventType || 'message';
    this.dataLines = [];
    this.eventType = '';
    if (dataLines.length === 0) return undefined;
    return { event, data: dataLines.join('\n'), id: this.lastEventId };
  }
}
