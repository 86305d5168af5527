import { defineConfig } from 'prisma/config';

// Only `prisma generate` is run (offline). Migrations are plain SQL under prisma/migrations,
// applied by the server's own runner (apps/server/src/repositories/migration.repository.ts).
export default defineConfig({
  schema: 'prisma/schema.prisma',
});
