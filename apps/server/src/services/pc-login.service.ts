import { Injectable } from '@nestjs/common';
import type { LoginResponse, PcLoginRequest, PcLoginResponse, Version, Workspace } from '@upc/protocol';
import type { z } from 'zod';
import type { Actor } from '../actor.js';
import { AuthService } from './auth.service.js';
import { DeviceService } from './device.service.js';
import { LeaseService } from './lease.service.js';
import { VersionService } from './version.service.js';
import { WorkspaceService } from './workspace.service.js';

type Request = z.output<typeof PcLoginRequest>;
/** What a PC's login adds to a plain sign-in's answer. */
type Workplace = Omit<PcLoginResponse, keyof LoginResponse>;

/**
 * A PC's whole login in one request, to spare the agent its round trips: the sign-in of
 * `/auth/login`, then the steps of `POST /devices`, `POST /workspaces`, the lease routes, `GET …
 * versions/:id` and `POST /devices/:id/cache-key`, each by the service behind that route, so the
 * rules, errors and audit events are theirs.
 */
@Injectable()
export class PcLoginService {
  constructor(
    private readonly auth: AuthService,
    private readonly devices: DeviceService,
    private readonly workspaces: WorkspaceService,
    private readonly leases: LeaseService,
    private readonly versions: VersionService,
  ) {}

  /**
   * The token is issued last (AuthService.loginWith): a step that fails answers its own error and
   * leaves no token. What the steps before it did (a registered device, a created workspace) stays,
   * as it does when the agent makes the calls one by one.
   */
  async login(request: Request, address: string): Promise<PcLoginResponse> {
    const { session, result } = await this.auth.loginWith(
      request.username,
      request.password,
      address,
      (actor) => this.openWorkplace(actor, request),
    );
    return { ...session, ...result };
  }

  private async openWorkplace(actor: Actor, request: Request): Promise<Workplace> {
    // What does not depend on each other runs together: each step is a few database round trips.
    const [device, workspaceId] = await Promise.all([
      this.devices.register(actor, request.device),
      this.workspaces.ensureOwn(actor, request.workspace),
    ]);
    const keyRead = request.cacheKey ? this.devices.cacheKey(actor, device.id) : Promise.resolve(null);
    keyRead.catch(() => undefined); // awaited below, once the lease is held
    const lease = request.takeOver
      ? await this.leases.takeOver(actor, workspaceId, device.id, request.leaseTtlSeconds)
      : await this.leases.acquire(actor, workspaceId, device.id, request.leaseTtlSeconds);
    // Read once the lease is ours: nobody else can move HEAD now, so the workspace and head agree.
    const workspace = await this.workspaces.get(actor, workspaceId);
    const [head, cacheKey] = await Promise.all([this.headOf(actor, workspace), keyRead]);
    return { device, workspace, lease, head, cacheKey: cacheKey?.key ?? null };
  }

  private headOf(actor: Actor, workspace: Workspace): Promise<Version | null> {
    if (workspace.headVersionId === null) return Promise.resolve(null);
    return this.versions.get(actor, workspace.id, workspace.headVersionId);
  }
}
