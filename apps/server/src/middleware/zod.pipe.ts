import type { PipeTransform } from '@nestjs/common';
import type { z } from 'zod';

/** Validates a body, query or parameter against a protocol schema; ProblemFilter names the bad fields. */
export class ZodPipe<T extends z.ZodType> implements PipeTransform<unknown, z.infer<T>> {
  constructor(private readonly schema: T) {}

  transform(value: unknown): z.infer<T> {
    return this.schema.parse(value ?? {});
  }
}
