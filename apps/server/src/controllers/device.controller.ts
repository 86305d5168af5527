import { Body, Controller, Delete, Get, Header, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import {
  CacheKey,
  Device,
  DeviceListQuery,
  HeartbeatRequest,
  Id,
  RegisterDeviceRequest,
} from '@upc/protocol';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import type { Actor } from '../actor.js';
import { CurrentActor } from '../middleware/auth.guard.js';
import { Docs } from '../middleware/openapi.js';
import { sendPage } from '../middleware/paging.js';
import { ZodPipe } from '../middleware/zod.pipe.js';
import { DeviceService } from '../services/device.service.js';

@ApiTags('devices')
@ApiBearerAuth()
@Controller('devices')
export class DeviceController {
  constructor(private readonly devices: DeviceService) {}

  @Post()
  @Docs({ body: RegisterDeviceRequest, response: Device })
  register(
    @CurrentActor() actor: Actor,
    @Body(new ZodPipe(RegisterDeviceRequest)) body: z.infer<typeof RegisterDeviceRequest>,
  ) {
    return this.devices.register(actor, body);
  }

  /** The body is optional: an older agent sends none. */
  @Post(':id/heartbeat')
  @HttpCode(200)
  @Docs({ body: HeartbeatRequest, bodyRequired: false, response: Device })
  heartbeat(
    @CurrentActor() actor: Actor,
    @Param('id', new ZodPipe(Id)) id: string,
    @Body(new ZodPipe(HeartbeatRequest)) body: z.infer<typeof HeartbeatRequest>,
  ) {
    return this.devices.heartbeat(actor, id, body);
  }

  @Get()
  @Docs({ query: DeviceListQuery, response: z.array(Device), paged: true })
  async list(
    @CurrentActor() actor: Actor,
    @Query(new ZodPipe(DeviceListQuery)) query: z.infer<typeof DeviceListQuery>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    return sendPage(reply, await this.devices.list(actor, query));
  }

  /** The key of the device's encrypted local cache, for its owner only. POST and no-store: never cached. */
  @Post(':id/cache-key')
  @HttpCode(200)
  @Header('cache-control', 'no-store')
  @Docs({ response: CacheKey })
  cacheKey(@CurrentActor() actor: Actor, @Param('id', new ZodPipe(Id)) id: string) {
    return this.devices.cacheKey(actor, id);
  }

  /** Forgets the key, so the device's local cache can no longer be read (owner or admin). */
  @Delete(':id/cache-key')
  @HttpCode(204)
  revokeCacheKey(@CurrentActor() actor: Actor, @Param('id', new ZodPipe(Id)) id: string) {
    return this.devices.revokeCacheKey(actor, id);
  }
}
