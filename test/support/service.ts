import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { eventually, type Pc, UPC } from './agent.js';

/** A `upc service` a test started; it is killed after the test. */
export interface Service {
  child: ChildProcess;
  socket: string;
  output: () => string;
}

const services: Service[] = [];
afterEach(() => {
  for (const service of services.splice(0)) service.child.kill('SIGKILL');
});

/** `upc service ARGS` on the PC, as its boot would start it; resolves once it serves. */
export async function startService(pc: Pc, args: string[] = []): Promise<Service> {
  const child = spawn(
    pc.prefix[0] ?? '',
    [...pc.prefix.slice(1), process.execPath, UPC, 'service', ...args],
    { env: { PATH: process.env.PATH ?? '', ...pc.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let said = '';
  child.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (said += chunk.toString()));
  const socket = join(pc.home, 'service.sock');
  const service = { child, socket, output: () => said };
  services.push(service);
  await eventually(() => Promise.resolve(said.includes('serving') ? true : undefined));
  return service;
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** One request on the service's socket, as a login manager makes it. */
export function ask(socket: string, method: string, path: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

interface Spares {
  builder: string;
  daemon: string;
}

/** The service's status once both spares are loaded and waiting, as after the PC sat idle. */
export const sparesReady = (socket: string) =>
  eventually(async () => {
    const status = await ask(socket, 'GET', '/status');
    const spares = status.body.spares as Spares;
    return spares.builder === 'waiting' && spares.daemon === 'waiting' ? status.body : undefined;
  }, 15_000);
