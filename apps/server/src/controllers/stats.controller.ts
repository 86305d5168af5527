import { Controller, Get, Header } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { Stats } from '@upc/protocol';
import { AdminOnly } from '../middleware/auth.guard.js';
import { Docs } from '../middleware/openapi.js';
import { StatsService } from '../services/stats.service.js';

@ApiTags('stats')
@ApiBearerAuth()
@AdminOnly()
@Controller('stats')
export class StatsController {
  constructor(private readonly stats: StatsService) {}

  /** Totals, versions per hour for the last 24 hours and bytes stored per day for the last 30 (UTC). */
  @Get()
  @Header('cache-control', 'no-store')
  @Docs({ response: Stats })
  read() {
    return this.stats.read();
  }
}
