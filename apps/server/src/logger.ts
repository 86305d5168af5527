import { ConsoleLogger, type LogLevel } from '@nestjs/common';

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug'];
// Nest's start-up chatter (every module and route) is only worth reading when debugging.
const CHATTY = new Set(['InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestFactory']);

export class ServerLogger extends ConsoleLogger {
  constructor(private readonly level: LogLevel) {
    super('uPC', { logLevels: LEVELS.slice(0, LEVELS.indexOf(level) + 1) });
  }

  override log(message: unknown, context?: string): void {
    if (this.level !== 'debug' && context !== undefined && CHATTY.has(context)) return;
    super.log(message, context);
  }
}
