import { describe, expect, it } from 'vitest';
import { SseParser } from './sse-parser.js';

describe('SseParser', () => {
  it('parses named events, multi-line data, comments and ids', () => {
    const parser = new SseParser();
    const events = parser.feed(
      ': keep-alive\n\nevent: sessions\ndata: {"a":\ndata: 1}\nid: 7\n\ndata: plain\n\n',
    );
    expect(events).toEqual([
      { event: 'sessions', data: '{"a":\n1}', id: '7' },
      { event: 'message', data: 'plain', id: '7' },
    ]);
  });

  it('joins events split across chunks at any byte, with CRLF, CR or LF line ends', () => {
    const text = 'event: sessions\r\ndata: {"sessions":[]}\r\n\r\nevent:x\rdata:y\r\rretry: 2500\n\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const parser = new SseParser();
      const events = [...parser.feed(text.slice(0, cut)), ...parser.feed(text.slice(cut))];
      expect(events).toEqual([
        { event: 'sessions', data: '{"sessions":[]}', id: undefined },
        { event: 'x', data: 'y', id: undefined },
      ]);
      expect(parser.retryMs).toBe(2500);
    }
  });

  it('does not dispatch an event until its blank line, nor one without data', () => {
    const parser = new SseParser();
    expect(parser.feed('event: sessions\ndata: {}\n')).toEqual([]);
    expect(parser.feed('\n')).toEqual([{ event: 'sessions', data: '{}', id: undefined }]);
    expect(parser.feed('event: empty\n\n')).toEqual([]);
  });
});
