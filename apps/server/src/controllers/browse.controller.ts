import { Body, Controller, Get, Param, Post, Query, Res, StreamableFile } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { FileQuery, Id, RestoreRequest, TreeListing, TreeQuery, Version, VersionDiff } from '@upc/protocol';
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import type { Actor } from '../actor.js';
import { CurrentActor } from '../middleware/auth.guard.js';
import { BinaryResponse, Docs } from '../middleware/openapi.js';
import { ZodPipe } from '../middleware/zod.pipe.js';
import { BrowseService } from '../services/browse.service.js';
import { RestoreService } from '../services/restore.service.js';

/** `filename*` of RFC 6266 / RFC 8187: UTF-8, percent-encoded (with the characters RFC 5987 leaves bare). */
const attachment = (name: string) =>
  `attachment; filename*=UTF-8''${encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  )}`;

/** The console's file browser: a version's folders, files and changes, and restoring them. */
@ApiTags('versions')
@ApiBearerAuth()
@Controller('workspaces/:workspaceId')
export class BrowseController {
  constructor(
    private readonly browse: BrowseService,
    private readonly restorer: RestoreService,
  ) {}

  /**
   * A page of one folder of the version (`path` relative to the image root, '' the root): folders
   * first, then by name, `limit` entries (1,000 unless asked) from `offset`, with the folder's `total`.
   */
  @Get('versions/:versionId/tree')
  @Docs({ query: TreeQuery, response: TreeListing })
  tree(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Param('versionId', new ZodPipe(Id)) versionId: string,
    @Query(new ZodPipe(TreeQuery)) query: z.output<typeof TreeQuery>,
  ) {
    return this.browse.listTree(actor, workspaceId, versionId, query);
  }

  /** A file's bytes as they were in the version, streamed a chunk at a time. */
  @Get('versions/:versionId/file')
  @Docs({ query: FileQuery })
  @BinaryResponse("the file's contents, as an attachment")
  async file(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Param('versionId', new ZodPipe(Id)) versionId: string,
    @Query(new ZodPipe(FileQuery)) query: z.output<typeof FileQuery>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<StreamableFile> {
    const file = await this.browse.file(actor, workspaceId, versionId, query.path);
    void reply
      .header('content-type', 'application/octet-stream')
      .header('content-disposition', attachment(file.name))
      .header('content-length', String(file.size))
      .header('cache-control', 'private, no-store');
    return new StreamableFile(file.stream);
  }

  /** What the version changed against its parent (everything added when it has none). */
  @Get('versions/:versionId/diff')
  @Docs({ response: VersionDiff })
  diff(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Param('versionId', new ZodPipe(Id)) versionId: string,
  ) {
    return this.browse.diff(actor, workspaceId, versionId);
  }

  /**
   * A new checkpoint version on top of HEAD with the version's root, or with HEAD's root and `path`
   * as it was in the version. 409 lease_held while a device holds the lease.
   */
  @Post('restore')
  @Docs({ body: RestoreRequest, response: Version })
  restore(
    @CurrentActor() actor: Actor,
    @Param('workspaceId', new ZodPipe(Id)) workspaceId: string,
    @Body(new ZodPipe(RestoreRequest)) body: z.output<typeof RestoreRequest>,
  ) {
    return this.restorer.restore(actor, workspaceId, body);
  }
}
