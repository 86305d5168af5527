import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_LINUX_POLICY } from '@upc/policy';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesUnder, simulatedPcs } from '../support/agent.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
const pc = simulatedPcs(() => server.url);

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

interface Report {
  workspace: string;
  platform: string;
  override: Record<string, unknown> | null;
  overrideApplies: boolean;
  rules: { kind: string; path?: string; pattern?: string; from: string; n: number }[];
  removed: { rule: { kind: string; path?: string }; by: number }[];
}

/** Writes an override document into the PC's home folder (outside the session) and returns its path. */
async function overrideFile(dir: string, rules: unknown[], platform = 'linux'): Promise<string> {
  const file = join(dir, `override-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify({ v: 1, platform, rules }));
  return file;
}

const workspaceOf = async (client: Awaited<ReturnType<TestServer['user']>>['client']) =>
  (await client.listWorkspaces()).find((w) => w.name === 'default');

describe('upc policy', () => {
  it('shows the default, stores an override, shows it merged, and resets it', async () => {
    const { client } = await server.user('ada');
    const a = await pc('pc-a');
    expect((await a.login('ada')).code).toBe(0);

    const shown = (await a.ok(['policy', 'show', '--json'])) as Report;
    expect(shown).toMatchObject({ workspace: 'default', platform: 'linux', override: null });
    expect(shown.rules.map(({ from: _f, n: _n, ...rule }) => rule)).toEqual(DEFAULT_LINUX_POLICY.rules);
    expect(shown.rules.every((r) => r.from === 'default')).toBe(true);
    const text = (await a.ok(['policy', 'show'])) as string;
    expect(text.split('\n')[0]).toBe('policy of workspace "default" on linux: the default (no override)');
    expect(text).toMatch(/^ {2}forward +\/home\/<user>$/m);
    expect(text).toMatch(/^ {2}exclude +~\/\.cache\/\*\*$/m);

    const file = await overrideFile(a.home, [
      { kind: 'exclude', pattern: '~/build/**' },
      { kind: 'cow', path: '/opt' },
      { kind: 'none', path: '/var/lib' },
    ]);
    const set = await a.run(['policy', 'set', file]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('stored the policy of "default"; it applies from the next login');
    expect((await workspaceOf(client))?.policy).toEqual({
      v: 1,
      platform: 'linux',
      rules: [
        { kind: 'exclude', pattern: '~/build/**' },
        { kind: 'cow', path: '/opt' },
        { kind: 'none', path: '/var/lib' },
      ],
    });

    const merged = (await a.ok(['policy', 'show', '--json'])) as Report;
    expect(merged.overrideApplies).toBe(true);
    expect(merged.rules[1]).toEqual({ kind: 'cow', path: '/opt', from: 'override', n: 2 });
    expect(merged.rules.at(-1)).toEqual({ kind: 'exclude', pattern: '~/build/**', from: 'override', n: 1 });
    expect(merged.rules.some((r) => r.path === '/var/lib')).toBe(false);
    expect(merged.removed).toEqual([{ rule: { kind: 'cow', path: '/var/lib' }, by: 3 }]);
    const mergedText = (await a.ok(['policy', 'show'])) as string;
    expect(mergedText.split('\n')[0]).toBe(
      'policy of workspace "default" on linux: the default with an override of 3 rules',
    );
    expect(mergedText).toMatch(/^ {2}cow +\/opt +\(override rule 2\)$/m);
    expect(mergedText).toMatch(/^ {2}exclude +~\/build\/\*\* +\(override rule 1\)$/m);
    expect(mergedText).toMatch(/^ {2}forward +\/usr\/local$/m);
    expect(mergedText).toMatch(/^ {2}removed +cow \/var\/lib +\(override rule 3\)$/m);

    const reset = await a.run(['policy', 'reset']);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toBe('the policy of "default" is the default again from the next login\n');
    expect((await workspaceOf(client))?.policy).toBeNull();
    expect(((await a.ok(['policy', 'show', '--json'])) as Report).override).toBeNull();
    await a.ok(['logout']);
  });

  it('refuses an override that is not valid with exit 2, naming the rules, and stores nothing', async () => {
    const { client } = await server.user('bo');
    const a = await pc('pc-a');
    expect((await a.login('bo')).code).toBe(0);
    const cases: [unknown[], string][] = [
      [
        [{ kind: 'forward', path: '/proc/x' }],
        "override rule 1 (forward /proc/x) lies inside default rule 7 (host /proc), which is the host's own and never saved",
      ],
      [
        [
          { kind: 'forward', path: '/srv' },
          { kind: 'cow', path: '/srv' },
        ],
        'override rules 1 (forward /srv) and 2 (cow /srv) name the same path',
      ],
      [
        [{ kind: 'exclude', pattern: '/srv/**' }],
        'override rule 1 (exclude /srv/**) is not inside a forward or cow rule',
      ],
      [[{ kind: 'forward', path: 'opt' }], 'override rule 1 (forward opt): the path is not absolute'],
      [[{ kind: 'mount', path: '/opt' }], 'override rule 1: unknown kind "mount"'],
      [[{ kind: 'none', path: '/srv' }], 'override rule 1 (none /srv) removes nothing'],
      [
        [
          { kind: 'none', path: '/home/<user>' },
          { kind: 'none', pattern: '~/.cache/**' },
        ],
        "the policy must forward the user's home (forward /home/<user>): the session's HOME is kept there",
      ],
      [
        [{ kind: 'none', path: '/home/<user>' }],
        'default rule 13 (exclude ~/.cache/**) is not inside a forward or cow rule',
      ],
    ];
    for (const [rules, message] of cases) {
      const refused = await a.run(['policy', 'set', await overrideFile(a.home, rules)]);
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toContain(message);
    }
    const wrongVersion = join(a.home, 'v2.json');
    await writeFile(wrongVersion, JSON.stringify({ v: 2, platform: 'linux', rules: [] }));
    const refused = await a.run(['policy', 'set', wrongVersion]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('v must be 1');
    const notJson = join(a.home, 'not.json');
    await writeFile(notJson, 'forward /opt');
    expect((await a.run(['policy', 'set', notJson])).stderr).toContain('is not JSON');
    expect((await a.run(['policy', 'set', join(a.home, 'missing.json')])).code).toBe(2);
    expect((await a.run(['policy', 'set'])).code).toBe(2);
    expect((await workspaceOf(client))?.policy).toBeNull();

    for (const words of [['show'], ['set'], ['reset']]) {
      const help = await a.run(['policy', ...words, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^usage: upc policy ${words[0] ?? ''}`));
    }
    await a.ok(['logout']);
  });

  it('applies an override exclude rule: what it names is not in the next login on another PC', async () => {
    await server.user('cleo');
    const a = await pc('pc-a');
    // Set before the first login, with the account's password (there is no session yet): the
    // workspace is created for it.
    const file = await overrideFile(a.home, [{ kind: 'exclude', pattern: '~/build/**' }]);
    const set = await a.run(['policy', 'set', file], '', { UPC_USER: 'cleo', UPC_PASSWORD: 'cleo-password' });
    expect(set.code, set.stderr).toBe(0);

    expect((await a.login('cleo')).code).toBe(0);
    await mkdir(join(a.files, 'build/obj'), { recursive: true });
    await mkdir(join(a.files, 'src'), { recursive: true });
    await mkdir(join(a.files, '.cache'), { recursive: true });
    await writeFile(join(a.files, 'build/obj/main.o'), 'object code');
    await writeFile(join(a.files, 'build/app'), 'binary');
    await writeFile(join(a.files, 'src/main.c'), 'int main(void) { return 0; }\n');
    await writeFile(join(a.files, 'buildlog.txt'), 'kept: not under ~/build');
    await writeFile(join(a.files, '.cache/x'), 'the default exclude still holds');
    await a.ok(['sync']);
    await a.ok(['logout']);

    const b = await pc('pc-b');
    expect((await b.login('cleo')).code).toBe(0);
    expect(await filesUnder(b.files)).toEqual(['buildlog.txt', 'src/main.c']);
    await b.ok(['logout']);
  });

  it('refuses to log in with a stored policy that is not valid, until it is reset', async () => {
    const { client } = await server.user('dan');
    const workspace = await client.createWorkspace({ name: 'default' });
    const invalid = { v: 1, platform: 'linux', rules: [{ kind: 'cow', path: '/dev/shm' }] };
    // Today's server refuses it; one from before it checked policies stored any JSON.
    await expect(client.setPolicy(workspace.id, invalid)).rejects.toThrow(/lies inside default rule 9/);
    const db = new pg.Client({ connectionString: server.databaseUrl });
    await db.connect();
    try {
      await db.query('UPDATE workspaces SET policy = $1 WHERE id = $2', [
        JSON.stringify(invalid),
        workspace.id,
      ]);
    } finally {
      await db.end();
    }
    const a = await pc('pc-a');
    const refused = await a.login('dan');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('workspace "default" cannot be opened');
    expect(refused.stderr).toContain('override rule 1 (cow /dev/shm) lies inside default rule 9 (host /dev)');
    expect(await client.getLease(workspace.id)).toBeNull(); // nothing was taken

    const env = { UPC_USER: 'dan', UPC_PASSWORD: 'dan-password' };
    expect((await a.run(['policy', 'show'], '', env)).stderr).toContain('cannot be used');
    expect((await a.run(['policy', 'reset'], '', env)).code).toBe(0);
    expect((await a.login('dan')).code).toBe(0);
    await a.ok(['logout']);
  });

  it('leaves an override for another platform aside', async () => {
    const { client } = await server.user('eve');
    const workspace = await client.createWorkspace({ name: 'default' });
    const a = await pc('pc-a');
    const file = await overrideFile(a.home, [{ kind: 'exclude', pattern: '~\\Downloads\\**' }], 'windows');
    const env = { UPC_USER: 'eve', UPC_PASSWORD: 'eve-password' };
    const set = await a.run(['policy', 'set', file], '', env);
    expect(set.code, set.stderr).toBe(0);
    expect((await client.getWorkspace(workspace.id)).policy).toMatchObject({ platform: 'windows' });
    const shown = (await a.run(['policy', 'show'], '', env)).stdout;
    expect(shown.split('\n')[0]).toBe(
      'policy of workspace "default" on linux: the default (the stored override is for windows, not linux)',
    );
    expect((await a.login('eve')).code).toBe(0);
    await a.ok(['logout']);
  });
});
