import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AcquireLeaseRequest, Id, Lease, RenewLeaseRequest } from '@upc/protocol';
import type { z } from 'zod';
import type { Actor } from '../actor.js';
import { CurrentActor } from '../middleware/auth.guard.js';
import { Docs } from '../middleware/openapi.js';
import { ZodPipe } from '../middleware/zod.pipe.js';
import { LeaseService } from '../services/lease.service.js';

type Acquire = z.infer<typeof AcquireLeaseRequest>;
type Renew = z.infer<typeof RenewLeaseRequest>;
const WorkspaceId = new ZodPipe(Id);

@ApiTags('leases')
@ApiBearerAuth()
@Controller('workspaces/:workspaceId/lease')
export class LeaseController {
  constructor(private readonly leases: LeaseService) {}

  /** The current lease, or null when nobody holds one. */
  @Get()
  @Docs({ response: Lease.nullable() })
  get(@CurrentActor() actor: Actor, @Param('workspaceId', WorkspaceId) workspaceId: string) {
    return this.leases.get(actor, workspaceId);
  }

  /** 409 lease_held, naming the holder, while another device's lease is live. */
  @Post()
  @HttpCode(200)
  @Docs({ body: AcquireLeaseRequest, response: Lease })
  acquire(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', WorkspaceId) workspaceId: string,
    @Body(new ZodPipe(AcquireLeaseRequest)) body: Acquire,
  ) {
    return this.leases.acquire(actor, workspaceId, body.deviceId, body.ttlSeconds);
  }

  @Post('renew')
  @HttpCode(200)
  @Docs({ body: RenewLeaseRequest, response: Lease })
  renew(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', WorkspaceId) workspaceId: string,
    @Body(new ZodPipe(RenewLeaseRequest)) body: Renew,
  ) {
    return this.leases.renew(actor, workspaceId, body.deviceId, body.fencingToken);
  }

  @Post('release')
  @HttpCode(204)
  @Docs({ body: RenewLeaseRequest })
  release(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', WorkspaceId) workspaceId: string,
    @Body(new ZodPipe(RenewLeaseRequest)) body: Renew,
  ) {
    return this.leases.release(actor, workspaceId, body.deviceId, body.fencingToken);
  }

  /** Grants the lease to this device even while another holds it; the old holder's token goes stale. */
  @Post('takeover')
  @HttpCode(200)
  @Docs({ body: AcquireLeaseRequest, response: Lease })
  takeOver(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', WorkspaceId) workspaceId: string,
    @Body(new ZodPipe(AcquireLeaseRequest)) body: Acquire,
  ) {
    return this.leases.takeOver(actor, workspaceId, body.deviceId, body.ttlSeconds);
  }

  /** Ends whoever holds the lease (owner or admin), e.g. for a PC that died. */
  @Delete()
  @HttpCode(204)
  forceRelease(@CurrentActor() actor: Actor, @Param('workspaceId', WorkspaceId) workspaceId: string) {
    return this.leases.forceRelease(actor, workspaceId);
  }
}
