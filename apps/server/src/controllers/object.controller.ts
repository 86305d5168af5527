import { Body, Controller, Get, Headers, HttpCode, Param, Post, Put, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import {
  Hash,
  Id,
  MissingObjectsRequest,
  MissingObjectsResponse,
  StoredObject,
  StoredPack,
} from '@upc/protocol';
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import type { Actor } from '../actor.js';
import { ApiException } from '../errors.js';
import { CurrentActor } from '../middleware/auth.guard.js';
import { BinaryBody, Docs } from '../middleware/openapi.js';
import { ZodPipe } from '../middleware/zod.pipe.js';
import { ObjectService } from '../services/object.service.js';

const binary = (body: unknown): Buffer => {
  if (!Buffer.isBuffer(body))
    throw new ApiException('unsupported_media_type', 'send the bytes as application/octet-stream');
  return body;
};

@ApiTags('objects')
@ApiBearerAuth()
@Controller('workspaces/:workspaceId')
export class ObjectController {
  constructor(private readonly objects: ObjectService) {}

  /** Which of these hashes the workspace does not have yet. */
  @Post('objects/missing')
  @HttpCode(200)
  @Docs({ body: MissingObjectsRequest, response: MissingObjectsResponse })
  async missing(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Body(new ZodPipe(MissingObjectsRequest)) body: z.infer<typeof MissingObjectsRequest>,
  ) {
    return { missing: await this.objects.missing(actor, workspaceId, body.hashes) };
  }

  @Put('objects/:hash')
  @BinaryBody()
  @Docs({ response: StoredObject })
  upload(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Param('hash', new ZodPipe(Hash)) hash: string,
    @Body() body: unknown,
  ) {
    return this.objects.uploadObject(actor, workspaceId, hash, binary(body));
  }

  @Put('packs/:hash')
  @BinaryBody()
  @Docs({ response: StoredPack })
  uploadPack(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Param('hash', new ZodPipe(Hash)) hash: string,
    @Body() body: unknown,
  ) {
    return this.objects.uploadPack(actor, workspaceId, hash, binary(body));
  }

  /** The object's bytes; honours a single `Range: bytes=…` with 206. */
  @Get('objects/:hash')
  async download(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Param('hash', new ZodPipe(Hash)) hash: string,
    @Headers('range') range: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Buffer> {
    const download = await this.objects.download(actor, workspaceId, hash, range);
    void reply
      .header('content-type', 'application/octet-stream')
      .header('accept-ranges', 'bytes')
      .header('etag', `"${hash}"`)
      .header('cache-control', 'private, max-age=31536000, immutable');
    if (download.range) {
      void reply
        .status(206)
        .header('content-range', `bytes ${download.range.start}-${download.range.end}/${download.size}`);
    }
    return Buffer.from(download.bytes.buffer, download.bytes.byteOffset, download.bytes.byteLength);
  }
}
