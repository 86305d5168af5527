import { Body, Controller, Get, Headers, HttpCode, Param, Post, Put, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import {
  FetchObjectsRequest,
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
import { CurrentActor } from '../middleware/auth.guard.js';
import { BinaryBody, BinaryResponse, Docs } from '../middleware/openapi.js';
import { type Upload, UploadBody } from '../middleware/upload-body.js';
import { ZodPipe } from '../middleware/zod.pipe.js';
import { ObjectService } from '../services/object.service.js';

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

  /**
   * Many objects in one answer, for restores (FetchObjectsRequest in libs/protocol schemas.ts has the
   * whole contract). The body is `application/octet-stream`: one record per object the workspace has,
   * `32 bytes raw SHA-256 id | 4 bytes big-endian length | the stored form as GET objects/:hash serves
   * it`, in the order asked for (parseObjectRecords reads it). Objects the workspace does not have are
   * left out. The server stops adding records before the body would pass UPC_MAX_FETCH_BYTES (32 MiB by
   * default), though it always sends at least one: the answer covers the hashes up to the last record's
   * id, and the client asks again for those after it. An empty body: the workspace has none of them.
   */
  @Post('objects/fetch')
  @HttpCode(200)
  @Docs({ body: FetchObjectsRequest })
  @BinaryResponse(
    'records of `32-byte SHA-256 | 4-byte big-endian length | stored object`, in the order asked for; ' +
      'objects the workspace lacks are left out; capped near UPC_MAX_FETCH_BYTES, so ask again for the ' +
      'hashes after the last record',
  )
  async fetch(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Body(new ZodPipe(FetchObjectsRequest)) body: z.infer<typeof FetchObjectsRequest>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Buffer> {
    const records = await this.objects.fetch(actor, workspaceId, body.hashes);
    void reply
      .header('content-type', 'application/octet-stream')
      .header('cache-control', 'private, no-store');
    return Buffer.from(records.buffer, records.byteOffset, records.byteLength);
  }

  @Put('objects/:hash')
  @BinaryBody()
  @Docs({ response: StoredObject })
  upload(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Param('hash', new ZodPipe(Hash)) hash: string,
    @UploadBody() body: Upload,
  ) {
    return this.objects.uploadObject(actor, workspaceId, hash, body);
  }

  @Put('packs/:hash')
  @BinaryBody()
  @Docs({ response: StoredPack })
  uploadPack(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Param('hash', new ZodPipe(Hash)) hash: string,
    @UploadBody() body: Upload,
  ) {
    return this.objects.uploadPack(actor, workspaceId, hash, body);
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
