import { stat } from 'node:fs/promises';
import { join, posix, resolve, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyHelmetOptions } from '@fastify/helmet';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Vite names what it emits under assets/ by content hash: a name never changes its bytes. */
const IMMUTABLE = { maxAge: 365 * 24 * 3600 * 1000, immutable: true };

const NOT_BUILT = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>uPC console not built</title></head>
<body>
<h1>The uPC console is not built</h1>
<p>Run <code>npm run build</code> and reload this page. The API is at <a href="/api/docs">/api/docs</a>.</p>
</body>
</html>
`;

/**
 * The console's pages: scripts, styles and fonts from the server itself only (Vite emits them as
 * files), images also as data: URLs, API calls and the event stream to the server itself.
 */
export function consoleCsp(upgradeInsecureRequests: boolean): FastifyHelmetOptions['contentSecurityPolicy'] {
  return {
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      fontSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      upgradeInsecureRequests: upgradeInsecureRequests ? [] : null,
    },
  };
}

/**
 * Serves the built console (`dir`: index.html and assets/) at `/`: a file that exists is sent,
 * assets/ with a year-long immutable cache, anything else with `no-cache` (revalidated by ETag);
 * every other path that is not under /api or /assets gets index.html, so that the single-page
 * app's routes load on a reload. /api paths and missing assets fall through to the 404 problem.
 * Whether the console is built is looked up on each request, so building it while the server runs
 * needs no restart; until then every page answers 503 with a note saying how to build it.
 *
 * Registered after helmet, whose per-route options give these pages `csp`.
 */
export async function serveConsole(
  fastify: FastifyInstance,
  dir: string,
  csp: FastifyHelmetOptions['contentSecurityPolicy'],
): Promise<void> {
  const root = resolve(dir);
  await fastify.register(fastifyStatic, { root, serve: false, suppressWarning: true, index: false });
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = decodePath(request.url);
    if (path === undefined || /^\/api(\/|$)/.test(path)) return notFound(reply);
    if (!(await isFile(join(root, 'index.html')))) {
      return reply
        .status(503)
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(NOT_BUILT);
    }
    const file = await fileUnder(root, path);
    if (file !== undefined && file !== '/index.html') {
      if (file.startsWith('/assets/')) return reply.sendFile(file, IMMUTABLE);
      return reply.header('cache-control', 'no-cache').sendFile(file, { cacheControl: false });
    }
    // A missing script or style is a 404, not a page that the browser would try to run as one.
    if (path.startsWith('/assets/')) return notFound(reply);
    return reply.header('cache-control', 'no-cache').sendFile('/index.html', { cacheControl: false });
  };
  const options = { helmet: { contentSecurityPolicy: csp } };
  fastify.get('/', options, handler);
  fastify.get('/*', options, handler);
}

/** The API's 404 problem (the not-found handler Nest installs). */
function notFound(reply: FastifyReply): FastifyReply {
  reply.callNotFound();
  return reply;
}

/** The URL's path, percent-decoded; undefined when it does not decode. */
function decodePath(url: string): string | undefined {
  try {
    const path = decodeURIComponent(url.split('?', 1)[0] ?? '/');
    return path.includes('\0') ? undefined : path;
  } catch {
    return undefined;
  }
}

/** `path` as a '/'-led path of a regular file under root, or undefined (dot files never). */
async function fileUnder(root: string, path: string): Promise<string | undefined> {
  const normal = posix.normalize(path);
  const segments = normal.split('/').filter((segment) => segment !== '');
  if (segments.length === 0 || segments.some((segment) => segment.startsWith('.'))) return undefined;
  const full = resolve(root, ...segments);
  if (!full.startsWith(root + sep)) return undefined;
  return (await isFile(full)) ? `/${segments.join('/')}` : undefined;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}
