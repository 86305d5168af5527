import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, open, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Pc, UPC } from '../support/agent.js';
import { processesIn, simulatedHosts } from '../support/hosts.js';
import { compileProgram } from '../support/native.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * What a hostile session program tries against the terminal of whoever started it (bubblewrap's
 * CVE-2017-5226): push a command into that terminal's input (TIOCSTI) on each of its standard
 * descriptors and on /dev/tty, now or from a background process after `upc exec` has returned,
 * or read what the terminal's owner types next.
 */
const ATTACK_SOURCE = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char *push(int fd, const char *text) {
  for (const char *c = text; *c; c++)
    if (ioctl(fd, TIOCSTI, c) < 0) return strerrorname_np(errno);
  if (ioctl(fd, TIOCSTI, "\\n") < 0) return strerrorname_np(errno);
  return "injected";
}

static void inject_all(FILE *out, const char *text) {
  for (int fd = 0; fd <= 2; fd++) fprintf(out, "fd%d: %s\\n", fd, push(fd, text));
  int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
  fprintf(out, "tty: %s\\n", tty < 0 ? strerrorname_np(errno) : push(tty, text));
  fflush(out);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "now") == 0) {
    inject_all(stdout, argv[2]);
    printf("attack-done\\n");
    return 0;
  }
  if (argc == 5 && (strcmp(argv[1], "later") == 0 || strcmp(argv[1], "read") == 0)) {
    signal(SIGHUP, SIG_IGN); /* a hung-up terminal must not be what saves the caller */
    if (fork() != 0) {
      printf("attack-done\\n");
      return 0;
    }
    sleep(atoi(argv[2]));
    FILE *out = fopen(argv[4], "w");
    if (!out) return 1;
    if (strcmp(argv[1], "later") == 0) {
      inject_all(out, argv[3]);
    } else {
      char got[256] = {0};
      alarm(4);
      ssize_t n = read(0, got, sizeof got - 1);
      int tty = open("/dev/tty", O_RDONLY | O_NOCTTY);
      char more[256] = {0};
      if (tty >= 0) (void)read(tty, more, sizeof more - 1);
      fprintf(out, "read %zd: [%s] tty: [%s]\\n", n, n > 0 ? got : "", more);
    }
    fclose(out);
    return 0;
  }
  return 2;
}
`;

/** A root shell on a terminal of its own (script(1)), as someone at the PC's console runs upc from. */
class RootTerminal {
  output = '';
  private readonly child: ChildProcess;
  readonly done: Promise<number | null>;

  constructor(env: Record<string, string>) {
    this.child = spawn('script', ['-qfec', 'sh', '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.done = new Promise((resolve) => this.child.once('close', resolve));
  }

  type(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }

  async waitFor(text: string, from = 0, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.output.indexOf(text, from) < 0) {
      if (Date.now() > deadline) throw new Error(`the terminal never showed ${text}:\n${this.output}`);
      await sleep(50);
    }
  }

  async close(): Promise<void> {
    this.type('exit');
    this.child.stdin?.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.done;
    clearTimeout(timer);
  }
}

let server: TestServer;
const host = simulatedHosts();
let attack: Awaited<ReturnType<typeof compileProgram>>;

beforeAll(async () => {
  server = await startTestServer();
  attack = await compileProgram('tty-attack', ATTACK_SOURCE);
});
afterAll(async () => {
  await server.close();
  await attack.dispose();
});

/** The terminal's settings as `stty -g` printed them. */
const modes = (output: string) => /[0-9a-f]+(:[0-9a-f]+){8,}/.exec(output)?.[0];

/** What the processes of the PC's session hold open (the targets of their descriptors). */
async function descriptorsIn(pc: Pc): Promise<string[]> {
  const record = JSON.parse(await readFile(join(pc.home, 'session', 'session.json'), 'utf8')) as {
    namespace: { init: number };
  };
  const held: string[] = [];
  for (const pid of await processesIn(await readlink(`/proc/${String(record.namespace.init)}/ns/pid`))) {
    for (const fd of await readdir(`/proc/${String(pid)}/fd`).catch(() => [])) {
      held.push(await readlink(`/proc/${String(pid)}/fd/${fd}`).catch(() => ''));
    }
  }
  return held;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

describe('a session program cannot reach the terminal of the root shell that ran upc', () => {
  it('pushes nothing into it (now or after upc exec returned), reads nothing typed there, and leaves it as it was', async () => {
    await server.user('tom');
    const pcHost = await host('tty');
    const pc = await pcHost.pc(server.url);
    const login = await pc.login('tom');
    expect(login.code, login.stderr).toBe(0);
    await copyFile(attack.path, join(pc.files, 'attack'));
    await chmod(join(pc.files, 'attack'), 0o755);

    const tag = randomBytes(4).toString('hex');
    let tried = '';
    const pwnedNow = `/tmp/upc-pwned-now-${tag}`;
    const pwnedLater = `/tmp/upc-pwned-later-${tag}`;
    const upc = [...pc.prefix, process.execPath, UPC].join(' ');
    const terminal = new RootTerminal({ PATH: process.env.PATH ?? '', TERM: 'dumb', ...pc.env });
    try {
      terminal.type("stty -g; tty; echo 'modes'-before");
      await terminal.waitFor('modes-before\r\n');
      const before = modes(terminal.output);
      const rootTty = /\/dev\/pts\/\d+/.exec(terminal.output)?.[0];
      expect(rootTty, terminal.output).toBeDefined();

      let mark = terminal.output.length;
      terminal.type(`${upc} exec -- tty; echo 'tty'-shown`);
      await terminal.waitFor('tty-shown\r\n', mark);
      const programTty = /\/dev\/pts\/\d+/.exec(terminal.output.slice(mark))?.[0];
      expect(programTty, terminal.output).toBeDefined();
      expect(programTty).not.toBe(rootTty); // a terminal of its own

      mark = terminal.output.length;
      terminal.type(`${upc} exec -- ./attack now 'touch ${pwnedNow}'; echo 'exec'-returned`);
      await terminal.waitFor('exec-returned\r\n', mark);
      tried = terminal.output.slice(mark);
      // Each try reached nothing but the program's own terminal, or was refused outright.
      expect(tried).toMatch(/fd0: \w+/);
      expect(tried).toMatch(/attack-done/);

      mark = terminal.output.length;
      terminal.type(`${upc} exec -- ./attack later 1 'touch ${pwnedLater}' later.txt; echo 'later'-returned`);
      await terminal.waitFor('later-returned\r\n', mark);
      mark = terminal.output.length;
      terminal.type(`${upc} exec -- ./attack read 1 x stolen.txt; echo 'read'-returned`);
      await terminal.waitFor('read-returned\r\n', mark);
      // Left running in the session, they hold nothing of the root shell's terminal.
      const held = await descriptorsIn(pc);
      expect(held.length).toBeGreaterThan(0);
      expect(held).not.toContain(rootTty);
      // What root types next, while the background readers wait in the session.
      terminal.type(`echo 'typed'-${tag}`);
      await sleep(2500);
      mark = terminal.output.length;
      terminal.type("stty -g; echo 'modes'-after");
      await terminal.waitFor('modes-after\r\n', mark);
      const after = modes(terminal.output.slice(mark));
      expect(after, terminal.output).toBe(before);
      expect(terminal.output).toContain(`typed-${tag}\r\n`); // the shell read it, nobody else
    } finally {
      await terminal.close();
    }
    expect(await exists(pwnedNow), terminal.output).toBe(false);
    expect(await exists(pwnedLater), terminal.output).toBe(false);
    expect(tried).toMatch(/fd0: EPERM/); // the second wall: no TIOCSTI in a session at all
    const stolen = await readFile(join(pc.files, 'stolen.txt'), 'utf8').catch(() => '');
    expect(stolen).not.toContain(`typed-${tag}`);
    const later = await readFile(join(pc.files, 'later.txt'), 'utf8').catch(() => '');
    expect(later).not.toContain('injected');
    await rm(pwnedNow, { force: true });
    await rm(pwnedLater, { force: true });
    await pc.ok(['logout']);
  });
});

describe("a session program gets none of its caller's descriptors", () => {
  it('neither the pipes of a non-terminal caller once upc exec returns, nor any descriptor above 2', async () => {
    await server.user('una');
    const pcHost = await host('fds');
    const pc = await pcHost.pc(server.url);
    const login = await pc.login('una');
    expect(login.code, login.stderr).toBe(0);

    // upc exec started with extra descriptors: one on a file only the PC's root may read.
    const secret = await open('/etc/shadow', 'r');
    const started = Date.now();
    const child = spawn(
      pc.prefix[0] ?? 'nsenter',
      [
        ...pc.prefix.slice(1),
        process.execPath,
        UPC,
        'exec',
        '--',
        'sh',
        '-c',
        'ls /proc/self/fd; cat <&3 2>&1 | head -c 40; (sleep 20; echo late) & echo started',
      ],
      {
        env: { PATH: process.env.PATH ?? '', ...pc.env },
        stdio: ['pipe', 'pipe', 'pipe', secret.fd, secret.fd],
      },
    );
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stdin?.end();
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    await secret.close();
    // 'close' waits for every holder of its pipes: the background sleep holds none of them.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(code).toBe(0);
    const [listing, ...rest] = stdout.split('\n');
    expect(listing).toBeDefined();
    expect(stdout, stdout).toContain('started');
    expect(stdout).not.toMatch(/root:/);
    // Its own 0, 1, 2 (and the descriptor ls reads /proc with), nothing of ours.
    const fds = stdout
      .split('\n')
      .filter((line) => /^\d+$/.test(line))
      .map(Number);
    expect(Math.max(...fds)).toBeLessThanOrEqual(3);
    expect(rest.join('\n')).not.toContain('late');
    const held = await descriptorsIn(pc);
    expect(held.some((target) => target === '/etc/shadow')).toBe(false);
    await pc.ok(['logout']);
  });
});
