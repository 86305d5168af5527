import { AuditRepository } from './audit.repository.js';
import { DeviceRepository } from './device.repository.js';
import { LeaseRepository } from './lease.repository.js';
import { LoginThrottleRepository } from './login-throttle.repository.js';
import { ObjectRepository } from './object.repository.js';
import { SessionRepository } from './session.repository.js';
import { StatsRepository } from './stats.repository.js';
import { TokenRepository } from './token.repository.js';
import { UserRepository } from './user.repository.js';
import { VersionRepository } from './version.repository.js';
import { WorkspaceRepository } from './workspace.repository.js';

export const repositories = [
  AuditRepository,
  DeviceRepository,
  LeaseRepository,
  LoginThrottleRepository,
  ObjectRepository,
  SessionRepository,
  StatsRepository,
  TokenRepository,
  UserRepository,
  VersionRepository,
  WorkspaceRepository,
];
