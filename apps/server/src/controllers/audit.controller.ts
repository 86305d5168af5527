import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AuditEvent, AuditQuery } from '@upc/protocol';
import { z } from 'zod';
import { AdminOnly } from '../middleware/auth.guard.js';
import { Docs } from '../middleware/openapi.js';
import { ZodPipe } from '../middleware/zod.pipe.js';
import { AuditService } from '../services/audit.service.js';

@ApiTags('audit')
@ApiBearerAuth()
@AdminOnly()
@Controller('audit')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  /** Newest first; page with `before` set to the last id seen. */
  @Get()
  @Docs({ query: AuditQuery, response: z.array(AuditEvent) })
  list(@Query(new ZodPipe(AuditQuery)) query: z.infer<typeof AuditQuery>) {
    return this.audit.list(query);
  }
}
