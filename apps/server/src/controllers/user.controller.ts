import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { CreateUserRequest, Id, ResetPasswordRequest, UpdateUserRequest, User } from '@upc/protocol';
import { z } from 'zod';
import type { Actor } from '../actor.js';
import { AdminOnly, CurrentActor } from '../middleware/auth.guard.js';
import { Docs } from '../middleware/openapi.js';
import { ZodPipe } from '../middleware/zod.pipe.js';
import { UserService } from '../services/user.service.js';

const UserQuery = z.object({ search: z.string().max(64).optional() });

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
  @Docs({ query: UserQuery, response: z.array(User) })
  list(@Query(new ZodPipe(UserQuery)) query: z.infer<typeof UserQuery>) {
    return this.users.list(query.search);
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
