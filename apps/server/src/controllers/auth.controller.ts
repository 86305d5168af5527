import { Body, Controller, Get, Header, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { LoginRequest, LoginResponse, PcLoginRequest, PcLoginResponse, User } from '@upc/protocol';
import type { z } from 'zod';
import type { Actor } from '../actor.js';
import { ClientAddress, CurrentActor, Public } from '../middleware/auth.guard.js';
import { Docs } from '../middleware/openapi.js';
import { ZodPipe } from '../middleware/zod.pipe.js';
import { AuthService } from '../services/auth.service.js';
import { PcLoginService } from '../services/pc-login.service.js';

@ApiTags('auth')
@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly pcLogins: PcLoginService,
  ) {}

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

  /**
   * A PC's login in one request: sign-in, device, workspace (created when missing), lease, HEAD and
   * optionally the device's cache key. Each failure is the failing step's own error, and leaves no
   * token. No-store: the answer carries the token and perhaps the cache key.
   */
  @Public()
  @Post('pc-login')
  @HttpCode(200)
  @Header('cache-control', 'no-store')
  @Docs({ body: PcLoginRequest, response: PcLoginResponse })
  pcLogin(
    @Body(new ZodPipe(PcLoginRequest)) body: z.infer<typeof PcLoginRequest>,
    @ClientAddress() address: string,
  ) {
    return this.pcLogins.login(body, address);
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
