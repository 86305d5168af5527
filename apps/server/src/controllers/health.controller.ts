import { Controller, Get, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { Health } from '@upc/protocol';
import type { FastifyReply } from 'fastify';
import { Public } from '../middleware/auth.guard.js';
import { Docs } from '../middleware/openapi.js';
import { HealthService } from '../services/health.service.js';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  /** 200 only when both the database and the object store answer; 503 otherwise. */
  @Public()
  @Get()
  @Docs({ response: Health })
  async check(@Res({ passthrough: true }) reply: FastifyReply): Promise<Health> {
    const health = await this.health.check();
    void reply.status(health.status === 'ok' ? 200 : 503).header('cache-control', 'no-store');
    return health;
  }
}
