import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ApiError, UpcClient } from '@upc/protocol';
import { AGENT_VERSION } from './index.js';
import { AgentError, EXIT } from './exit-codes.js';
import { checkServerUrl, readSettings, type Settings } from './settings.js';

interface Command {
  /** The words that select it, e.g. ['admin', 'user', 'add']. */
  path: string[];
  usage: string;
  summary: string;
  options: ParseArgsConfig['options'];
  run(args: { positionals: string[]; values: Record<string, unknown>; settings: Settings }): Promise<void>;
}

const COMMON = {
  server: { type: 'string' },
  'insecure-http': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const commands: Command[] = [
  {
    path: ['admin', 'user', 'add'],
    usage: 'upc admin user add NAME [--admin] < password',
    summary: 'create a user; the new password is read from standard input',
    options: { ...COMMON, admin: { type: 'boolean' } },
    async run({ positionals, values, settings }) {
      const [username] = positionals;
      if (!username || positionals.length > 1) throw new AgentError('give exactly one user name', EXIT.usage);
      const password = await readPasswordFromStdin();
      const client = await signedIn(settings, values);
      const user = await client.createUser({
        username,
        password,
        role: values.admin === true ? 'admin' : 'user',
      });
      print(
        values,
        user,
        `created ${user.role === 'admin' ? 'admin' : 'user'} ${user.username} (${user.id})`,
      );
    },
  },
  {
    path: ['admin', 'user', 'list'],
    usage: 'upc admin user list [--json]',
    summary: 'list the users',
    options: COMMON,
    async run({ values, settings }) {
      const users = await (await signedIn(settings, values)).listUsers();
      const lines = users.map(
        (u) =>
          `${u.username.padEnd(24)} ${u.role.padEnd(6)} ${u.disabled ? 'disabled' : 'active  '} ${u.createdAt}`,
      );
      print(values, users, lines.length > 0 ? lines.join('\n') : 'no users');
    },
  },
];

const HELP = `upc ${AGENT_VERSION} — your workspace, on any PC

usage: upc COMMAND [options]   (upc COMMAND --help for one command)

${commands.map((c) => `  ${c.usage.padEnd(50)} ${c.summary}`).join('\n')}

environment: UPC_SERVER (default http://localhost:8080), UPC_HOME, UPC_DEVICE_NAME,
             UPC_USER and UPC_PASSWORD (for scripts and admin commands)
exit codes:  0 done, 1 failed, 2 wrong command line, 3 denied, 4 server unreachable
`;

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(HELP);
    return argv.length === 0 ? EXIT.usage : EXIT.ok;
  }
  if (argv[0] === '--version') {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return EXIT.ok;
  }
  const command = commands.find((c) => c.path.every((word, i) => argv[i] === word));
  if (!command) throw new AgentError(`unknown command "${argv.join(' ')}"; see upc --help`, EXIT.usage);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv.slice(command.path.length),
      options: command.options,
      allowPositionals: true,
    });
  } catch (error) {
    throw new AgentError(`${(error as Error).message}\nusage: ${command.usage}`, EXIT.usage);
  }
  const values = parsed.values as Record<string, unknown>;
  if (values.help === true) {
    process.stdout.write(`usage: ${command.usage}\n\n${command.summary}\n`);
    return EXIT.ok;
  }
  await command.run({ positionals: parsed.positionals, values, settings: readSettings() });
  return EXIT.ok;
}

/** A client signed in as UPC_USER / UPC_PASSWORD, for admin commands and scripts. */
async function signedIn(settings: Settings, values: Record<string, unknown>): Promise<UpcClient> {
  const server = typeof values.server === 'string' ? values.server : settings.server;
  const url = checkServerUrl(server, values['insecure-http'] === true);
  if (!settings.user || !settings.password) {
    throw new AgentError('set UPC_USER and UPC_PASSWORD to the account to act as', EXIT.usage);
  }
  const client = new UpcClient({ baseUrl: url.toString() });
  await client.login(settings.user, settings.password);
  return client;
}

async function readPasswordFromStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('new password: ');
  let text = '';
  for await (const chunk of process.stdin) text += (chunk as Buffer).toString();
  const password = text.split(/\r?\n/)[0] ?? '';
  if (password === '') throw new AgentError('no password on standard input', EXIT.usage);
  return password;
}

function print(values: Record<string, unknown>, data: unknown, text: string): void {
  process.stdout.write(values.json === true ? `${JSON.stringify(data, null, 2)}\n` : `${text}\n`);
}

function exitCodeOf(error: unknown): number {
  if (error instanceof AgentError) return error.exitCode;
  if (error instanceof ApiError)
    return error.status === 401 || error.status === 403 ? EXIT.denied : EXIT.failed;
  if (error instanceof TypeError && error.message === 'fetch failed') return EXIT.unreachable;
  return EXIT.failed;
}

function messageOf(error: unknown): string {
  if (error instanceof TypeError && error.message === 'fetch failed') {
    return `cannot reach the server (${(error.cause as Error | undefined)?.message ?? 'no answer'})`;
  }
  return error instanceof Error ? error.message : String(error);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`upc: ${messageOf(error)}\n`);
    process.exitCode = exitCodeOf(error);
  },
);
