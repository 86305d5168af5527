import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  applyMigrations,
  MIGRATIONS_DIR,
  MigrationError,
} from '../../apps/server/src/repositories/migration.repository.js';
import { createEmptyDatabase } from '../support/database.js';
import { testFolder } from '../support/scratch.js';

interface Field {
  column: string;
  type: string;
  optional: boolean;
}
interface Model {
  table: string;
  fields: Field[];
}

const SCALARS: Record<string, string[]> = {
  String: ['text', 'uuid'],
  Boolean: ['boolean'],
  Int: ['integer'],
  BigInt: ['bigint'],
  DateTime: ['timestamp with time zone'],
  Json: ['jsonb'],
};

/** What the Prisma client expects, read from prisma/schema.prisma: tables, columns, types, nullability, enums. */
async function readPrismaSchema(): Promise<{ models: Model[]; enums: Map<string, string[]> }> {
  const text = await readFile(new URL('../../prisma/schema.prisma', import.meta.url), 'utf8');
  const enums = new Map<string, string[]>();
  for (const [, name = '', body = ''] of text.matchAll(/^enum (\w+) \{\n([\s\S]*?)\n\}/gm)) {
    enums.set(
      name,
      body
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('//')),
    );
  }
  const modelNames = new Set([...text.matchAll(/^model (\w+) \{/gm)].map((m) => m[1]));
  const models: Model[] = [];
  for (const [, name = '', body = ''] of text.matchAll(/^model (\w+) \{\n([\s\S]*?)\n\}/gm)) {
    const table = /@@map\("(\w+)"\)/.exec(body)?.[1] ?? name;
    const fields: Field[] = [];
    for (const line of body.split('\n').map((l) => l.trim())) {
      const match = /^(\w+)\s+(\w+)(\[\])?(\?)?(.*)$/.exec(line);
      if (!match || line.startsWith('@@')) continue;
      const [, field = '', type = '', list, optional, attributes = ''] = match;
      if (list || modelNames.has(type)) continue; // relations are not columns
      const column = /@map\("(\w+)"\)/.exec(attributes)?.[1] ?? field;
      fields.push({ column, type, optional: optional === '?' });
    }
    models.push({ table, fields });
  }
  return { models, enums };
}

let url: string;
beforeAll(async () => {
  url = await createEmptyDatabase();
});

describe('migrations', () => {
  it('apply to an empty database, are recorded, and are not applied twice', async () => {
    const first = await applyMigrations(url);
    expect(first.applied).toContain('0001_init');
    expect(first.alreadyApplied).toEqual([]);
    const second = await applyMigrations(url);
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toEqual(first.applied);
  });

  it('produce exactly the schema the Prisma client expects', async () => {
    const { models, enums } = await readPrismaSchema();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const columns = await client.query<{
        table_name: string;
        column_name: string;
        data_type: string;
        udt_name: string;
        is_nullable: 'YES' | 'NO';
      }>(`SELECT table_name, column_name, data_type, udt_name, is_nullable FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name <> 'upc_migrations'`);
      const actual = new Map(columns.rows.map((c) => [`${c.table_name}.${c.column_name}`, c]));
      const expected = new Set<string>();
      for (const model of models) {
        for (const field of model.fields) {
          const key = `${model.table}.${field.column}`;
          expected.add(key);
          const column = actual.get(key);
          expect(column, `${key} is missing from the migrated database`).toBeDefined();
          if (!column) continue;
          if (enums.has(field.type)) expect(column.udt_name, key).toBe(field.type);
          else
            expect(SCALARS[field.type], `${key}: ${column.data_type} for ${field.type}`).toContain(
              column.data_type,
            );
          expect(column.is_nullable, `${key} nullability`).toBe(field.optional ? 'YES' : 'NO');
        }
      }
      expect(
        [...actual.keys()].filter((key) => !expected.has(key)),
        'columns the schema does not know',
      ).toEqual([]);
      for (const [name, values] of enums) {
        const rows = await client.query<{ v: string }>(
          `SELECT e.enumlabel AS v FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = $1
           ORDER BY e.enumsortorder`,
          [name],
        );
        expect(
          rows.rows.map((r) => r.v),
          `enum ${name}`,
        ).toEqual(values);
      }
    } finally {
      await client.end();
    }
  });

  it('refuse to start when an applied migration was edited afterwards', async () => {
    const dir = await testFolder('upc-migrations-');
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    const file = join(dir, '0001_init', 'migration.sql');
    await writeFile(file, (await readFile(file, 'utf8')) + '\n-- edited\n');
    await expect(applyMigrations(url, dir)).rejects.toThrow(MigrationError);
    await expect(applyMigrations(url, dir)).rejects.toThrow(/0001_init changed after it was applied/);
  });

  it('apply once when several servers start at the same time, and roll back a failing one', async () => {
    const fresh = await createEmptyDatabase();
    const results = await Promise.all([
      applyMigrations(fresh),
      applyMigrations(fresh),
      applyMigrations(fresh),
    ]);
    const appliers = results.filter((r) => r.applied.length > 0);
    expect(appliers).toHaveLength(1);
    expect(appliers[0]?.applied).toContain('0001_init');
    expect(
      results.filter((r) => r.applied.length === 0).every((r) => r.alreadyApplied.includes('0001_init')),
    ).toBe(true);
    const dir = await testFolder('upc-migrations-');
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    await cp(join(dir, '0001_init'), join(dir, '9999_broken'), { recursive: true });
    await writeFile(
      join(dir, '9999_broken', 'migration.sql'),
      'CREATE TABLE half_done (id int); SELECT nonsense();',
    );
    await expect(applyMigrations(fresh, dir)).rejects.toThrow(/9999_broken failed/);
    const client = new pg.Client({ connectionString: fresh });
    await client.connect();
    const tables = await client.query(
      `SELECT 1 FROM information_schema.tables WHERE table_name = 'half_done'`,
    );
    await client.end();
    expect(tables.rowCount).toBe(0);
  });
});
