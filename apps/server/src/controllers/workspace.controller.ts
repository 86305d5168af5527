import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import {
  CreateWorkspaceRequest,
  Id,
  SetPolicyRequest,
  SetQuotaRequest,
  Workspace,
  WorkspaceListQuery,
} from '@upc/protocol';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import type { Actor } from '../actor.js';
import { AdminOnly, CurrentActor } from '../middleware/auth.guard.js';
import { Docs } from '../middleware/openapi.js';
import { sendPage } from '../middleware/paging.js';
import { ZodPipe } from '../middleware/zod.pipe.js';
import { WorkspaceService } from '../services/workspace.service.js';

@ApiTags('workspaces')
@ApiBearerAuth()
@Controller('workspaces')
export class WorkspaceController {
  constructor(private readonly workspaces: WorkspaceService) {}

  @Post()
  @Docs({ body: CreateWorkspaceRequest, response: Workspace })
  create(
    @CurrentActor() actor: Actor,
    @Body(new ZodPipe(CreateWorkspaceRequest)) body: z.infer<typeof CreateWorkspaceRequest>,
  ) {
    return this.workspaces.create(actor, body);
  }

  @Get()
  @Docs({ query: WorkspaceListQuery, response: z.array(Workspace), paged: true })
  async list(
    @CurrentActor() actor: Actor,
    @Query(new ZodPipe(WorkspaceListQuery)) query: z.infer<typeof WorkspaceListQuery>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    return sendPage(reply, await this.workspaces.list(actor, query));
  }

  @Get(':id')
  @Docs({ response: Workspace })
  get(@CurrentActor() actor: Actor, @Param('id', new ZodPipe(Id)) id: string) {
    return this.workspaces.get(actor, id);
  }

  @Put(':id/policy')
  @Docs({ body: SetPolicyRequest, response: Workspace })
  setPolicy(
    @CurrentActor() actor: Actor,
    @Param('id', new ZodPipe(Id)) id: string,
    @Body(new ZodPipe(SetPolicyRequest)) body: z.infer<typeof SetPolicyRequest>,
  ) {
    return this.workspaces.setPolicy(actor, id, body.policy);
  }

  @AdminOnly()
  @Put(':id/quota')
  @Docs({ body: SetQuotaRequest, response: Workspace })
  setQuota(
    @CurrentActor() actor: Actor,
    @Param('id', new ZodPipe(Id)) id: string,
    @Body(new ZodPipe(SetQuotaRequest)) body: z.infer<typeof SetQuotaRequest>,
  ) {
    return this.workspaces.setQuota(actor, id, body.quotaBytes);
  }

  @Delete(':id')
  @HttpCode(204)
  delete(@CurrentActor() actor: Actor, @Param('id', new ZodPipe(Id)) id: string) {
    return this.workspaces.delete(actor, id);
  }
}
