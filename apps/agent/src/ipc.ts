import { request, type IncomingMessage, type ServerResponse, createServer, type Server } from 'node:http';
import { rm } from 'node:fs/promises';

/**
 * The CLI talks to the session's daemon over HTTP on a Unix socket in the agent's home, which only
 * its owner can open (the home is 0700).
 */
export type Handler = (body: Record<string, unknown>) => Promise<{ status: number; body: unknown }>;

export async function serve(socketPath: string, routes: Record<string, Handler>): Promise<Server> {
  if (process.platform !== 'win32') await rm(socketPath, { force: true }); // a dead daemon's socket
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      const handler = routes[`${req.method ?? 'GET'} ${req.url ?? '/'}`];
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (!handler) {
        reply(404, { error: 'no such daemon request' });
        return;
      }
      let body: Record<string, unknown> = {};
      try {
        if (text !== '') body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        reply(400, { error: 'bad JSON' });
        return;
      }
      handler(body).then(
        (answer) => {
          reply(answer.status, answer.body);
        },
        (error: unknown) => {
          reply(500, { error: error instanceof Error ? error.message : String(error) });
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      resolve();
    });
  });
  return server;
}

export class DaemonUnreachable extends Error {
  override name = 'DaemonUnreachable';
}

/** One request to the daemon; rejects with DaemonUnreachable when nothing listens. */
export function call(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 600_000,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, timeout: timeoutMs }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('the session daemon did not answer in time')));
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED')
        reject(new DaemonUnreachable(error.message));
      else reject(error);
    });
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
