import { Controller, Get, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { SessionsEvent } from '@upc/protocol';
import type { FastifyReply } from 'fastify';
import type { Actor } from '../actor.js';
import { CurrentActor } from '../middleware/auth.guard.js';
import { openEventStream } from '../middleware/event-stream.js';
import { EventStreamResponse } from '../middleware/openapi.js';
import { SessionService } from '../services/session.service.js';

@ApiTags('events')
@ApiBearerAuth()
@Controller('events')
export class EventsController {
  constructor(private readonly sessions: SessionService) {}

  /**
   * Server-sent events for the console, with the usual bearer token (read it with fetch; EventSource
   * cannot send the header). A `sessions` event at once and whenever the list changes; a
   * `: keep-alive` comment every 15 s; the stream ends when the token stops being valid.
   */
  @Get()
  @EventStreamResponse(
    'sessions',
    SessionsEvent,
    'The live sessions the caller may see (all for an admin, their own workspaces for a user), ' +
      'sent at once and on every change.',
  )
  async stream(@CurrentActor() actor: Actor, @Res() reply: FastifyReply): Promise<void> {
    await this.sessions.watch(actor, () => openEventStream(reply));
  }
}
