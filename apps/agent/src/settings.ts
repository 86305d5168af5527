import { hostname } from 'node:os';
import { join } from 'node:path';
import { AgentError, EXIT } from './exit-codes.js';

/** What the agent reads from its environment, in one place (flags override these). */
export interface Settings {
  server: string;
  home: string;
  deviceName: string;
  user: string | undefined;
  password: string | undefined;
}

export function readSettings(env: Record<string, string | undefined> = process.env): Settings {
  return {
    server: env.UPC_SERVER ?? 'http://localhost:8080',
    home: env.UPC_HOME ?? join(env.HOME ?? '/root', '.upc'),
    deviceName: env.UPC_DEVICE_NAME ?? hostname(),
    user: env.UPC_USER,
    password: env.UPC_PASSWORD,
  };
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/**
 * A password goes over plain http only to this machine: anywhere else it would cross the network
 * in clear text. `--insecure-http` is the explicit way round it.
 */
export function checkServerUrl(server: string, insecureHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new AgentError(`"${server}" is not a server URL (try http://localhost:8080)`, EXIT.usage);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AgentError(
      `the server URL must start with https:// or http://, not ${url.protocol}`,
      EXIT.usage,
    );
  }
  const loopback = LOOPBACK.has(url.hostname) || url.hostname.startsWith('127.');
  if (url.protocol === 'http:' && !loopback && !insecureHttp) {
    throw new AgentError(
      `refusing to send a password over plain http to ${url.host}; use https://, or --insecure-http if you must`,
      EXIT.usage,
    );
  }
  return url;
}
