import { AuditService } from './audit.service.js';
import { AuthService } from './auth.service.js';
import { BootstrapService } from './bootstrap.service.js';
import { BrowseService } from './browse.service.js';
import { DeviceService } from './device.service.js';
import { HealthService } from './health.service.js';
import { LeaseService } from './lease.service.js';
import { ObjectService } from './object.service.js';
import { PcLoginService } from './pc-login.service.js';
import { RestoreService } from './restore.service.js';
import { SessionService } from './session.service.js';
import { StatsService } from './stats.service.js';
import { TreeService } from './tree.service.js';
import { UserService } from './user.service.js';
import { VersionService } from './version.service.js';
import { WorkspaceService } from './workspace.service.js';

export const services = [
  AuditService,
  AuthService,
  BootstrapService,
  BrowseService,
  DeviceService,
  HealthService,
  LeaseService,
  ObjectService,
  PcLoginService,
  RestoreService,
  SessionService,
  StatsService,
  TreeService,
  UserService,
  VersionService,
  WorkspaceService,
];
