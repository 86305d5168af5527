import { applyDecorators } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiQuery } from '@nestjs/swagger';
import { z } from 'zod';

type JsonSchema = Record<string, unknown>;

const toOpenApi = (schema: z.ZodType, io: 'input' | 'output'): JsonSchema =>
  z.toJSONSchema(schema, { target: 'openapi-3.0', io, unrepresentable: 'any' });

/** Documents a route's JSON body and answer in OpenAPI from the same zod schemas that validate them. */
export function Docs(options: {
  body?: z.ZodType;
  /** False for a body the route accepts but does not need (default true). */
  bodyRequired?: boolean;
  response?: z.ZodType;
  query?: z.ZodObject;
  /** The answer is a list that `limit` and `offset` page, with the total in X-Total-Count. */
  paged?: boolean;
}) {
  const decorators: MethodDecorator[] = [];
  if (options.body) {
    decorators.push(
      ApiBody({ schema: toOpenApi(options.body, 'input'), required: options.bodyRequired ?? true }),
    );
  }
  if (options.response) {
    decorators.push(
      ApiOkResponse({
        schema: toOpenApi(options.response, 'output'),
        ...(options.paged
          ? {
              headers: {
                'X-Total-Count': {
                  description: 'with `limit` or `offset`: how many items match, on every page together',
                  schema: { type: 'integer', minimum: 0 },
                },
              },
            }
          : {}),
      }),
    );
  }
  for (const [name, field] of Object.entries(options.query?.shape ?? {})) {
    decorators.push(ApiQuery({ name, required: false, schema: toOpenApi(field as z.ZodType, 'input') }));
  }
  return applyDecorators(...decorators);
}

/** Documents a raw `application/octet-stream` body. */
export const BinaryBody = () =>
  ApiBody({
    schema: { type: 'string', format: 'binary' },
    description: 'the raw bytes (application/octet-stream)',
  });

/** Documents a raw `application/octet-stream` answer. */
export const BinaryResponse = (description: string) =>
  ApiOkResponse({
    description,
    content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
  });

/** Documents a `text/event-stream` answer whose events carry `data`'s JSON (named by `event`). */
export const EventStreamResponse = (event: string, data: z.ZodType, description: string) =>
  ApiOkResponse({
    description,
    content: {
      'text/event-stream': {
        schema: {
          type: 'string',
          description: `events named "${event}", each a line of JSON: ${JSON.stringify(toOpenApi(data, 'output'))}`,
        },
      },
    },
  });
