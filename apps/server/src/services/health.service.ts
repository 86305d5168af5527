import { Inject, Injectable } from '@nestjs/common';
import type { Health } from '@upc/protocol';
import type { Database } from '../repositories/database.js';
import { DATABASE, OBJECT_STORE } from '../repositories/tokens.js';
import type { ObjectStore } from '../store/object-store.js';

const PROBE_TIMEOUT_MS = 2000;

@Injectable()
export class HealthService {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
  ) {}

  async check(): Promise<Health> {
    const [db, store] = await Promise.all([
      probe(() => this.db.$queryRaw`SELECT 1`),
      probe(() => this.store.ping()),
    ]);
    return {
      status: db && store ? 'ok' : 'unavailable',
      db: db ? 'ok' : 'down',
      store: store ? 'ok' : 'down',
    };
  }
}

async function probe(check: () => Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => {
      resolve(false);
    }, PROBE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([check().then(() => true), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
