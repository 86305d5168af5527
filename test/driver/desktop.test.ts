import { copyFile, mkdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countColours, readPng, type RgbImage } from '../../driver/src/linux/xwd.js';
import { eventually } from '../support/agent.js';
import { processesIn, simulatedHosts } from '../support/hosts.js';
import { startTestServer, type TestServer } from '../support/server.js';

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-results', 'driver');
let server: TestServer;
const host = simulatedHosts();

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

/** The colours in a rectangle of an image. */
function region(image: RgbImage, x: number, y: number, width: number, height: number): RgbImage {
  const rgb = Buffer.alloc(width * height * 3);
  for (let row = 0; row < height; row++) {
    image.rgb.copy(
      rgb,
      row * width * 3,
      ((y + row) * image.width + x) * 3,
      ((y + row) * image.width + x + width) * 3,
    );
  }
  return { width, height, rgb };
}

interface DesktopReport {
  started: boolean;
  kind: string;
  display: number;
  screenshot: string | null;
}

describe("the session's desktop", () => {
  it('runs inside the session: a window a program in the session opens shows in its screenshot', async () => {
    await server.user('dee');
    const pcHost = await host('d');
    const pc = await pcHost.pc(server.url);
    expect((await pc.login('dee')).code).toBe(0);
    const shots = join(pc.home, 'shots');
    await pcHost.exec(['mkdir', '-p', shots]);

    const first = (await pc.ok([
      'desktop',
      '--json',
      '--screenshot',
      join(shots, 'one.png'),
    ])) as DesktopReport;
    expect(first).toMatchObject({ started: true, kind: 'virtual' });
    // The desktop is shown once its first window (xclock) has drawn: the first screenshot has it.
    const before = readPng(await readFile(join(shots, 'one.png')));
    expect(countColours(before, 2)).toBe(2);
    expect([before.width, before.height]).toEqual([1280, 800]);
    const area = { x: 700, y: 400, width: 300, height: 200 };
    expect(countColours(region(before, area.x, area.y, area.width, area.height))).toBe(1); // empty there

    // A program started in the session, with nothing but the session's DISPLAY, opens a window.
    const started = await pc.run([
      'exec',
      '--',
      'sh',
      '-c',
      `xeyes -geometry ${String(area.width)}x${String(area.height)}+${String(area.x)}+${String(area.y)} >/dev/null 2>&1 & echo $DISPLAY`,
    ]);
    expect(started.stdout.trim()).toBe(`:${String(first.display)}`);
    const after = await eventually(
      async () => {
        const again = (await pc.ok([
          'desktop',
          '--json',
          '--screenshot',
          join(shots, 'two.png'),
        ])) as DesktopReport;
        expect(again.started).toBe(false); // the same desktop, shown again
        const image = readPng(await readFile(join(shots, 'two.png')));
        return countColours(region(image, area.x, area.y, area.width, area.height)) > 1 ? image : undefined;
      },
      10_000,
      'the window in the screenshot',
    );
    expect(after.width).toBe(1280);

    // The X server is the session's: not among the PC's processes, and gone after logout.
    const session = JSON.parse(await readFile(join(pc.home, 'session', 'session.json'), 'utf8')) as {
      namespace: { init: number };
    };
    const pidNamespace = await readlink(`/proc/${String(session.namespace.init)}/ns/pid`);
    const pids = await processesIn(pidNamespace);
    const commands = await Promise.all(pids.map((pid) => readFile(`/proc/${String(pid)}/cmdline`, 'utf8')));
    expect(commands.some((c) => c.startsWith('Xvfb'))).toBe(true);

    const switched = await pc.run(['switch', 'workspace']);
    expect(switched.code).toBe(1);
    expect(switched.stdout).toMatch(/virtual display/);
    expect((await pc.run(['switch', 'nowhere'])).code).toBe(2);

    // Kept as the test's artifacts: what the desktop showed before and after the window opened.
    await mkdir(ARTIFACTS, { recursive: true });
    await copyFile(join(shots, 'one.png'), join(ARTIFACTS, 'desktop-before.png'));
    await copyFile(join(shots, 'two.png'), join(ARTIFACTS, 'desktop-after.png'));

    await pc.ok(['logout']);
    expect(await processesIn(pidNamespace)).toEqual([]);
  });
});
