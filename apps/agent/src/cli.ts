import { parseArgs } from 'node:util';
import { commands } from './commands.js';
import { AgentError, EXIT, exitCodeOf, messageOf } from './exit-codes.js';
import { AGENT_VERSION } from './index.js';
import { readSettings } from './settings.js';

const HELP = `upc ${AGENT_VERSION} — your workspace, on any PC

usage: upc COMMAND [options]   (upc COMMAND --help for one command)

${commands.map((c) => `  ${c.usage}\n      ${c.summary}`).join('\n')}

environment: UPC_SERVER (default http://localhost:8080), UPC_HOME (default ~/.upc),
             UPC_DEVICE_NAME, UPC_USER and UPC_PASSWORD (for scripts and admin commands)
exit codes:  0 done, 1 failed, 2 wrong command line, 3 denied, 4 server unreachable,
             5 the workspace is in use on another PC
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
  const command = commands
    .filter((c) => c.path.every((word, i) => argv[i] === word))
    .sort((a, b) => b.path.length - a.path.length)[0];
  if (!command) throw new AgentError(`unknown command "${argv.join(' ')}"; see upc --help`, EXIT.usage);
  const rest = argv.slice(command.path.length);
  // Everything after `--` belongs to the command being run (upc exec -- CMD ARGS).
  const dash = rest.indexOf('--');
  const own = dash === -1 ? rest : rest.slice(0, dash);
  const passthrough = dash === -1 ? [] : rest.slice(dash + 1);
  let parsed;
  try {
    parsed = parseArgs({ args: own, options: command.options, allowPositionals: true });
  } catch (error) {
    throw new AgentError(`${(error as Error).message}\nusage: ${command.usage}`, EXIT.usage);
  }
  const values = parsed.values as Record<string, unknown>;
  if (values.help === true) {
    process.stdout.write(`usage: ${command.usage}\n\n${command.summary}\n${command.details ?? ''}`);
    return EXIT.ok;
  }
  return (
    (await command.run({ positionals: parsed.positionals, passthrough, values, settings: readSettings() })) ??
    EXIT.ok
  );
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
