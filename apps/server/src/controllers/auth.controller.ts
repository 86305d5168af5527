import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { LoginRequest, LoginResponse, User } from '@upc/protocol';
import type { z } from 'zod';
import type { Actor } from '../actor.js';
import { ClientAddress, CurrentActor, Public } from '../middleware/auth.guard.js';
import { Docs } from '../middleware/openapi.js';
import { ZodPipe } from '../middleware/zod.pipe.js';
import { AuthService } from '../services/auth.service.js';

@ApiTags('auth')
@Controller('auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Public()
  @Post('login')
  @HttpCode(200)
  @Docs({ body: LoginRequest, response: LoginResponse })
  login(
    @Body(new ZodPipe(LoginRequest)) body: z.infer<typeof LoginRequest>,
    @ClientAddress() address: string,
  ) {
    return this.auth.login(body.username, body.password, address);
  }

  @ApiBearerAuth()
  @Post('logout')
  @HttpCode(204)
  logout(@CurrentActor() actor: Actor) {
    return this.auth.logout(actor);
  }

  @ApiBearerAuth()
  @Get('me')
  @Docs({ response: User })
  me(@CurrentActor() actor: Actor) {
    return this.auth.me(actor);
  }
}
