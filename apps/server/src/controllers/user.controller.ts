import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import {
  CreateUserRequest,
  Id,
  ResetPasswordRequest,
  UpdateUserRequest,
  User,
  UserListQuery,
} from '@upc/protocol';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import type { Actor } from '../actor.js';
import { AdminOnly, CurrentActor } from '../middleware/auth.guard.js';
import { Docs } from '../middleware/openapi.js';
import { sendPage } from '../middleware/paging.js';
import { ZodPipe } from '../middleware/zod.pipe.js';
import { UserService } from '../services/user.service.js';

@ApiTags('users')
@ApiBearerAuth()
@AdminOnly()
@Controller('users')
export class UserController {
  constructor(private readonly users: UserService) {}

  @Post()
  @Docs({ body: CreateUserRequest, response: User })
  create(
    @CurrentActor() actor: Actor,
    @Body(new ZodPipe(CreateUserRequest)) body: z.infer<typeof CreateUserRequest>,
  ) {
    return this.users.create(actor, body);
  }

  @Get()
  @Docs({ query: UserListQuery, response: z.array(User), paged: true })
  async list(
    @Query(new ZodPipe(UserListQuery)) query: z.infer<typeof UserListQuery>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    return sendPage(reply, await this.users.list(query));
  }

  @Patch(':id')
  @Docs({ body: UpdateUserRequest, response: User })
  update(
    @CurrentActor() actor: Actor,
    @Param('id', new ZodPipe(Id)) id: string,
    @Body(new ZodPipe(UpdateUserRequest)) body: z.infer<typeof UpdateUserRequest>,
  ) {
    return this.users.update(actor, id, body);
  }

  @Post(':id/password')
  @HttpCode(204)
  @Docs({ body: ResetPasswordRequest })
  resetPassword(
    @CurrentActor() actor: Actor,
    @Param('id', new ZodPipe(Id)) id: string,
    @Body(new ZodPipe(ResetPasswordRequest)) body: z.infer<typeof ResetPasswordRequest>,
  ) {
    return this.users.resetPassword(actor, id, body.password);
  }

  @Delete(':id')
  @HttpCode(204)
  delete(@CurrentActor() actor: Actor, @Param('id', new ZodPipe(Id)) id: string) {
    return this.users.delete(actor, id);
  }
}
