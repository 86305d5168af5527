import { Injectable } from '@nestjs/common';
import type { Stats } from '@upc/protocol';
import { StatsRepository } from '../repositories/stats.repository.js';

/** The console's overview: totals over every user and workspace (the controller admits admins only). */
@Injectable()
export class StatsService {
  constructor(private readonly stats: StatsRepository) {}

  async read(): Promise<Stats> {
    const rows = await this.stats.read();
    const today = rows.storage.at(-1);
    return {
      users: rows.users,
      workspaces: rows.workspaces,
      storageBytes: today?.bytes ?? 0,
      versionsToday: rows.versionsToday,
      activity: rows.activity.map((entry) => ({ hour: entry.hour.toISOString(), versions: entry.versions })),
      storage: rows.storage,
    };
  }
}
