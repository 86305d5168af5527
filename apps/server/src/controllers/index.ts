import { AuditController } from './audit.controller.js';
import { AuthController } from './auth.controller.js';
import { BrowseController } from './browse.controller.js';
import { DeviceController } from './device.controller.js';
import { EventsController } from './events.controller.js';
import { HealthController } from './health.controller.js';
import { LeaseController } from './lease.controller.js';
import { ObjectController } from './object.controller.js';
import { StatsController } from './stats.controller.js';
import { UserController } from './user.controller.js';
import { VersionController } from './version.controller.js';
import { WorkspaceController } from './workspace.controller.js';

export const controllers = [
  AuditController,
  AuthController,
  BrowseController,
  DeviceController,
  EventsController,
  HealthController,
  LeaseController,
  ObjectController,
  StatsController,
  UserController,
  VersionController,
  WorkspaceController,
];
