import { existsSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processesIn, sh, simulatedHosts } from '../support/hosts.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * The desktop's helpers are the workspace's programs, run inside the session as its user: its root
 * can replace them. What they say must not fill the agent's memory, and one that never ends must
 * not hold the agent (a workspace `xwd` made the root agent buffer 1.5 GB and hang).
 */

const TIME = '/usr/bin/time';
const MiB = 1024 * 1024;
let server: TestServer;
const host = simulatedHosts();

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const canMeasure = existsSync(TIME);

describe("the desktop's helpers are bounded", () => {
  it.skipIf(!canMeasure)(
    `${canMeasure ? '' : `(skipped: no ${TIME} to measure peak memory) `}an xwd of the workspace that writes without end and ignores SIGTERM: the agent stays small, ends, and leaves nothing running`,
    async () => {
      await server.user('xan');
      const pc = await (await host('xwd')).pc(server.url);
      expect((await pc.login('xan')).code).toBe(0);
      await sh(
        pc,
        'printf \'#!/bin/sh\\ntrap "" TERM\\nexec cat /dev/zero\\n\' > /usr/bin/xwd && chmod 755 /usr/bin/xwd',
        true,
      );
      const started = Date.now();
      pc.prefix = [TIME, '-f', 'upc-peak-rss-kb=%M', ...pc.prefix];
      const shot = await pc.run(['desktop', '--screenshot', join(pc.home, 'shot.png')]);
      pc.prefix = pc.prefix.slice(3);
      const seconds = (Date.now() - started) / 1000;
      const peak = Number(/upc-peak-rss-kb=(\d+)/.exec(shot.stderr)?.[1] ?? 'NaN') * 1024;
      // It fails (there is no screenshot to be had), says why, and neither waits nor grows for long.
      expect(shot.code).not.toBe(0);
      expect(shot.stderr).toMatch(/xwd .*(said more than|did not finish)/);
      expect(seconds).toBeLessThan(90);
      expect(peak).toBeLessThan(400 * MiB);
      // No xwd of the session is left writing.
      const record = JSON.parse(await readFile(join(pc.home, 'session', 'session.json'), 'utf8')) as {
        namespace: { init: number };
      };
      const inSession = await processesIn(await readlink(`/proc/${String(record.namespace.init)}/ns/pid`));
      const commands = await Promise.all(
        inSession.map((pid) => readFile(`/proc/${String(pid)}/cmdline`, 'utf8').catch(() => '')),
      );
      expect(commands.filter((c) => c.startsWith('cat\0/dev/zero'))).toEqual([]);
      await pc.ok(['logout']);
    },
    180_000,
  );
});
