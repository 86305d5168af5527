import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  chooseDesktop,
  type Desktop,
  freeDisplay,
  HOST_PROBE,
  type HostProbe,
  type Run,
  screenshot,
  startDesktop,
  stopDesktop,
  switchTo,
} from './desktop.js';
import { countColours, readPng } from './xwd.js';

/** A host with the given programs and files, and X servers on the given displays. */
function host(programs: string[], files: string[] = [], displays: number[] = []): HostProbe {
  return {
    onPath: (program) => programs.includes(program),
    exists: (path) => files.includes(path),
    displaysInUse: () => new Set(displays),
  };
}

/** Runs the desktop's programs straight on this host instead of inside a session. */
const runOnHost: Run = (argv, { detached, env }) => {
  const [program, ...args] = argv;
  if (program === undefined) throw new Error('nothing to run');
  return spawn(program, args, {
    detached,
    env: { ...process.env, ...env },
    stdio: detached ? 'ignore' : 'pipe',
  });
};

function groupAlive(group: number): boolean {
  try {
    process.kill(-group, 0);
    return true;
  } catch {
    return false;
  }
}

const has = (program: string) => HOST_PROBE.onPath(program, process.env.PATH);
const hasXvfb = has('Xvfb');
/** The programs started after the X server: twm if there, then the first of the windows there. */
const expectedClients = [
  ...(has('twm') ? ['twm'] : []),
  ...['xterm', 'xclock', 'xeyes'].filter(has).slice(0, 1),
];

/**
 * The same, with a home whose .twmrc uses only the X server's built-in font: twm's own defaults
 * need Helvetica from xfonts-75dpi or xfonts-100dpi, and without it twm ends as it starts.
 */
const twmHome = mkdtempSync(join(tmpdir(), 'upc-desktop-test-'));
writeFileSync(
  join(twmHome, '.twmrc'),
  ['TitleFont', 'ResizeFont', 'MenuFont', 'IconFont', 'IconManagerFont']
    .map((f) => `${f} "fixed"\n`)
    .join(''),
);
afterAll(() => {
  rmSync(twmHome, { recursive: true, force: true });
});
const runWithTwmrc: Run = (argv, options) =>
  runOnHost(argv, { ...options, env: { HOME: twmHome, LANG: 'C', ...options.env } });

describe('chooseDesktop', () => {
  it('nests the desktop in a window when the agent has a display and Xephyr', () => {
    const env = { DISPLAY: ':0', XAUTHORITY: '/run/user/1000/xauth', PATH: '/usr/bin' };
    expect(chooseDesktop(env, host(['Xephyr', 'Xorg'], ['/dev/tty0'], [0]))).toEqual({
      kind: 'nested',
      display: 1,
      hostDisplay: ':0',
      hostXauthority: '/run/user/1000/xauth',
    });
  });

  it('puts it on a VT of its own on a console with Xorg and no display', () => {
    expect(chooseDesktop({}, host(['Xephyr', 'Xorg'], ['/dev/tty0']))).toEqual({
      kind: 'vt',
      display: 1,
      vt: 8,
    });
  });

  it('falls back to a virtual screen', () => {
    expect(chooseDesktop({ DISPLAY: ':0' }, host(['Xorg'], ['/dev/tty0']))).toEqual({
      kind: 'virtual',
      display: 1,
    });
    expect(chooseDesktop({}, host(['Xorg']))).toEqual({ kind: 'virtual', display: 1 });
    expect(chooseDesktop({}, host(['Xephyr'], ['/dev/tty0']))).toEqual({ kind: 'virtual', display: 1 });
  });

  it('takes a display number no X server of the host uses (they share its abstract sockets)', () => {
    expect(chooseDesktop({}, host([], [], [0, 1, 2, 4])).display).toBe(3);
    expect(freeDisplay(10, host([], [], [10, 11]))).toBe(12);
  });
});

describe('switchTo', () => {
  const virtual: Desktop = { kind: 'virtual', display: 1, processes: [], warnings: [] };

  it('says why a virtual or nested desktop has nothing to switch', () => {
    expect(switchTo('workspace', virtual)).toEqual({
      switched: false,
      reason:
        'the workspace desktop is a virtual display (Xvfb :1) with no screen; use upc desktop --screenshot',
    });
    const nested: Desktop = { kind: 'nested', display: 2, hostDisplay: ':0', processes: [], warnings: [] };
    const result = switchTo('host', nested);
    expect(result.switched).toBe(false);
    expect(result).toHaveProperty('reason', expect.stringMatching(/a window on the host's display :0/));
  });

  it('does not guess the host VT when it was not recorded', () => {
    const vt: Desktop = { kind: 'vt', display: 1, vt: 8, processes: [], warnings: [] };
    expect(switchTo('host', vt)).toEqual({ switched: false, reason: "the host's VT is not known" });
  });
});

describe('startDesktop', () => {
  it('refuses a session without the X server', async () => {
    const bare: Run = () => spawn('true', [], { stdio: 'pipe' }); // finds no program at all
    await expect(startDesktop(bare, { kind: 'virtual', display: 1 })).rejects.toThrow(
      'Xvfb is not installed in the workspace',
    );
  });

  it.skipIf(!hasXvfb)('says so when the X server ends before it is ready', async () => {
    const badServer: Run = (argv, options) =>
      runOnHost(argv[0] === 'Xvfb' ? [...argv, '-no-such-option'] : argv, options);
    await expect(startDesktop(badServer, { kind: 'virtual', display: freeDisplay(77) })).rejects.toThrow(
      /^the X server \(Xvfb :\d+\) exited with status 1$/,
    );
  });

  it.skipIf(!hasXvfb)(
    'starts Xvfb, a window manager and a window, photographs it and stops it all',
    async () => {
      // On the host, unlike in a session, /tmp is shared: a free number from a high one.
      const display = freeDisplay(77);
      const desktop = await startDesktop(runWithTwmrc, { kind: 'virtual', display });
      try {
        expect(desktop.processes.map((p) => p.program)).toEqual(['Xvfb', ...expectedClients]);
        expect(desktop.warnings).toEqual(has('twm') ? [] : [expect.stringMatching(/^no window manager/)]);
        expect(HOST_PROBE.displaysInUse().has(display)).toBe(true);
        await expect(startDesktop(runOnHost, { kind: 'virtual', display })).rejects.toThrow(
          `display :${display} is taken in the session (/tmp/.X11-unix/X${display} exists)`,
        );
        await expectDrawn(display);
      } finally {
        await stopDesktop(desktop);
      }
      for (const { pid } of desktop.processes) expect(groupAlive(pid)).toBe(false);
      expect(existsSync(`/tmp/.X11-unix/X${display}`)).toBe(false);
      expect(existsSync(`/tmp/.X${display}-lock`)).toBe(false);
    },
  );

  it.skipIf(!hasXvfb || !has('twm'))('goes without a window manager that fails as it starts', async () => {
    const failingTwm: Run = (argv, options) =>
      runOnHost(argv[0] === 'twm' ? ['sh', '-c', 'exit 1'] : argv, options);
    const desktop = await startDesktop(failingTwm, { kind: 'virtual', display: freeDisplay(77) });
    try {
      expect(desktop.processes.map((p) => p.program)).toEqual(['Xvfb', ...expectedClients.slice(1)]);
      expect(desktop.warnings).toEqual(['the window manager twm exited with status 1: the desktop has none']);
      await expectDrawn(desktop.display);
    } finally {
      await stopDesktop(desktop);
    }
  });
});

/** Waits for a window on the screen: a bare Xvfb screen is one colour, a window adds more. */
async function expectDrawn(display: number): Promise<void> {
  let colours = 0;
  const deadline = Date.now() + 5000;
  while (colours < 2 && Date.now() < deadline) {
    const image = readPng(await screenshot(runOnHost, display));
    expect([image.width, image.height]).toEqual([1280, 800]);
    colours = countColours(image, 2);
    if (colours < 2) await sleep(100);
  }
  expect(colours).toBe(2);
}
