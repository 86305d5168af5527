import { Body, Controller, Get, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { CommitRequest, Id, Version, VersionListQuery } from '@upc/protocol';
import { z } from 'zod';
import type { Actor } from '../actor.js';
import { CurrentActor } from '../middleware/auth.guard.js';
import { Docs } from '../middleware/openapi.js';
import { ZodPipe } from '../middleware/zod.pipe.js';
import { VersionService } from '../services/version.service.js';

@ApiTags('versions')
@ApiBearerAuth()
@Controller('workspaces/:workspaceId/versions')
export class VersionController {
  constructor(private readonly versions: VersionService) {}

  /** Newest first; page with `before` set to the oldest createdAt seen. */
  @Get()
  @Docs({ query: VersionListQuery, response: z.array(Version) })
  list(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Query(new ZodPipe(VersionListQuery)) query: z.infer<typeof VersionListQuery>,
  ) {
    return this.versions.list(actor, workspaceId, query.limit, query.before);
  }

  @Get(':versionId')
  @Docs({ response: Version })
  get(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Param('versionId', new ZodPipe(Id)) versionId: string,
  ) {
    return this.versions.get(actor, workspaceId, versionId);
  }

  /** Compare-and-swap of HEAD from `parentId`, with the lease's fencing token. */
  @Post()
  @Docs({ body: CommitRequest, response: Version })
  commit(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Body(new ZodPipe(CommitRequest)) body: z.infer<typeof CommitRequest>,
  ) {
    return this.versions.commit(actor, workspaceId, body);
  }
}
