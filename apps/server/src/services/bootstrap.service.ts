import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import type { Config } from '../config.js';
import { CONFIG } from '../repositories/tokens.js';
import { UserRepository } from '../repositories/user.repository.js';
import { generatePassword } from './secrets.js';
import { UserService } from './user.service.js';

/** On a server with no active admin, creates `admin` so that somebody can sign in. */
@Injectable()
export class BootstrapService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Bootstrap');

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly users: UserRepository,
    private readonly userService: UserService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if ((await this.users.countActiveAdmins()) > 0 || (await this.users.findByUsername('admin'))) return;
    const password = this.config.adminPassword ?? generatePassword();
    try {
      await this.userService.create(null, { username: 'admin', password, role: 'admin' });
    } catch (error) {
      if ((error as { code?: string }).code === 'username_taken') return; // another replica was first
      throw error;
    }
    if (this.config.adminPassword) {
      this.logger.log('created the admin user "admin" with the password from UPC_ADMIN_PASSWORD');
    } else {
      // Printed once, to the console only: it is not stored anywhere but as its argon2id hash.
      process.stdout.write(
        `\n  Created the admin user "admin" with password: ${password}\n  It is shown only this once.\n\n`,
      );
    }
  }
}
