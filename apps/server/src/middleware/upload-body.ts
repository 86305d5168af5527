import { Readable } from 'node:stream';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiException } from '../errors.js';

const OCTET_STREAM = 'application/octet-stream';

/** An upload's body as it arrives: the request's own stream, which nothing has read yet. */
export interface Upload {
  stream: Readable;
  /** Content-Length, when the client sent one. */
  declaredBytes: number | undefined;
}

/**
 * `application/octet-stream` bodies are not parsed or buffered: the route gets the request's stream
 * (UploadBody) and streams it where it goes. Only upload routes take such bodies.
 */
export function streamUploads(fastify: FastifyInstance): void {
  fastify.addContentTypeParser(OCTET_STREAM, (_request, payload, done) => {
    done(null, payload);
  });
}

/** The route's upload (see streamUploads); 415 for any other kind of body. */
export const UploadBody = createParamDecorator((_: unknown, context: ExecutionContext): Upload => {
  const request = context.switchToHttp().getRequest<FastifyRequest>();
  const declared = Number(request.headers['content-length']);
  const declaredBytes = Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined;
  if (request.body instanceof Readable) return { stream: request.body, declaredBytes };
  const type = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (request.body === undefined && type === OCTET_STREAM)
    return { stream: Readable.from([]), declaredBytes: 0 };
  throw new ApiException('unsupported_media_type', 'send the bytes as application/octet-stream');
});
