import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pc, UpcResult } from '../support/agent.js';
import { simulatedHosts } from '../support/hosts.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
const host = simulatedHosts();
let probe: string;
let probeDir: string;

/** Tries to load a kernel module (init_module with an empty image) and prints the errno's name. */
const PROBE_SOURCE = `
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
  long r = syscall(SYS_init_module, "", 0UL, "");
  printf("%s\\n", r == 0 ? "loaded" : strerrorname_np(errno));
  return 0;
}
`;

beforeAll(async () => {
  server = await startTestServer();
  probeDir = await mkdtemp(join(tmpdir(), 'upc-probe-'));
  await writeFile(join(probeDir, 'probe.c'), PROBE_SOURCE);
  probe = join(probeDir, 'probe');
  await promisify(execFile)('gcc', ['-O1', '-o', probe, join(probeDir, 'probe.c')]);
});
afterAll(async () => {
  await server.close();
  await rm(probeDir, { recursive: true, force: true });
});

async function login(pc: Pc, user: string): Promise<void> {
  const result = await pc.login(user);
  expect(result.code, result.stderr).toBe(0);
}

function run(pc: Pc, script: string, admin = false): Promise<UpcResult> {
  return pc.run(['exec', ...(admin ? ['--admin'] : []), '--', 'sh', '-c', script]);
}

describe('inside a session the user is root of the workspace, never of the PC', () => {
  it('cannot read host secrets, write host files outside the layers, see or signal host processes, or load modules', async () => {
    await server.user('ivy');
    const pcHost = await host('p', {
      '/etc/ssh/ssh_host_ed25519_key': 'HOST PRIVATE KEY\n',
      '/etc/ssh/ssh_host_ed25519_key.pub': 'ssh-ed25519 AAAA host\n',
    });
    const pc = await pcHost.pc(server.url);
    await login(pc, 'ivy');

    for (const admin of [false, true]) {
      const shadow = await run(pc, 'cat /etc/shadow /etc/gshadow 2>&1; true', admin);
      expect(shadow.stdout).not.toMatch(/root:/);
      // What the session's root reads is an empty stand-in, not the host's file.
      if (admin) expect(shadow.stdout).toBe('');
    }
    // The PC's SSH host key: hidden (an empty stand-in); its public half is not a secret.
    const keys = await run(
      pc,
      'cat /etc/ssh/ssh_host_ed25519_key; cat /etc/ssh/ssh_host_ed25519_key.pub',
      true,
    );
    expect(keys.stdout).toBe('ssh-ed25519 AAAA host\n');
    expect((await pcHost.exec(['cat', '/etc/ssh/ssh_host_ed25519_key'])).stdout).toBe('HOST PRIVATE KEY\n');
    const secret = await readFile('/etc/shadow', 'utf8');
    expect(secret).toMatch(/^root:/); // the host's own file is there and readable by the host's root

    // Root of the workspace: uid 0 inside, mapped to an id range of its own outside.
    const map = await run(pc, 'id -u; cat /proc/self/uid_map', true);
    const [uid, line] = map.stdout.split('\n');
    expect(uid).toBe('0');
    const [inside, outside, count] = (line ?? '').trim().split(/\s+/).map(Number);
    expect(inside).toBe(0);
    expect(outside).toBeGreaterThanOrEqual(0x10000000);
    expect(count).toBe(65536);

    // Paths no rule names are the host's, read-only; other users' places are not writable either.
    const targets = ['/srv/x', '/var/log/upc-x', '/root/x', '/boot/x', '/upc-x', '/var/cache/upc-x'];
    for (const target of targets) {
      const attempt = await run(pc, `echo x > ${target}`, true);
      expect(attempt.code, target).not.toBe(0);
    }
    for (const target of targets) expect((await pcHost.exec(['test', '-e', target])).code, target).toBe(1);

    // Host processes: not visible, so not signalable. The session's own are all there is.
    const pids = await run(pc, 'ls /proc | grep -E "^[0-9]+$"', true);
    const visible = pids.stdout.trim().split('\n').map(Number);
    expect(visible.length).toBeLessThan(10);
    expect(visible).not.toContain(pcHost.pid);
    const signal = await run(pc, `kill -TERM ${String(process.pid)} 2>&1 || echo refused`, true);
    expect(signal.stdout).toMatch(/refused/);
    expect((await run(pc, 'cat /proc/1/cmdline | tr "\\0" " "', true)).stdout).toMatch(/upc-ns start/);

    // Kernel modules: refused with EPERM (the workspace's root has no such power over the PC).
    // A kernel built without module loading answers ENOSYS to everyone, the host's root included.
    const onHost = (await promisify(execFile)(probe)).stdout;
    const expected = onHost === 'ENOSYS\n' ? 'ENOSYS\n' : 'EPERM\n';
    const inHome = join(pc.files, 'probe');
    await copyFile(probe, inHome);
    await chmod(inHome, 0o755);
    for (const admin of [false, true]) {
      const loaded = await run(pc, '~/probe', admin);
      expect(loaded.stdout, loaded.stderr).toBe(expected);
    }
    await pc.ok(['logout']);
  });

  it("two users at once on one PC: each sees only their own workspace, and neither reaches the other's files", async () => {
    await server.user('xia');
    await server.user('yan');
    const pcHost = await host('shared');
    const x = await pcHost.pc(server.url);
    const y = await pcHost.pc(server.url);
    await login(x, 'xia');
    await login(y, 'yan');
    await run(x, 'echo xia-only > ~/mine.txt');
    await run(y, 'echo yan-secret > ~/secret.txt');
    await run(y, 'mkdir -p /opt/yan && echo yan > /opt/yan/app', true);

    expect((await run(x, 'ls -A /home; cat ~/mine.txt')).stdout).toBe('xia\nxia-only\n');
    expect((await run(y, 'ls -A /home; cat ~/secret.txt')).stdout).toBe('yan\nyan-secret\n');
    for (const admin of [false, true]) {
      // By the path inside a session, by the other session's folder on the PC, by the agents' state.
      const reach = await run(
        x,
        [
          'cat /home/yan/secret.txt',
          `cat ${join(y.files, 'secret.txt')}`,
          `ls ${y.home}`,
          `ls -A ${x.home}`, // its own agent's state (the session folder in it included)
          'ls /opt/yan',
          'ls -A /run/upc',
        ]
          .map((c) => `${c} 2>/dev/null`)
          .join('; '),
        admin,
      );
      expect(reach.stdout).toBe('');
    }
    await x.ok(['logout']);
    await y.ok(['logout']);
  });
});
