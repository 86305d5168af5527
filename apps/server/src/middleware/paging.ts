import { TOTAL_COUNT_HEADER } from '@upc/protocol';
import type { FastifyReply } from 'fastify';
import type { Paged } from '../services/paging.js';

/** The page's items as the answer, its total (when a page was asked for) in the X-Total-Count header. */
export function sendPage<T>(reply: FastifyReply, page: Paged<T>): T[] {
  if (page.total !== undefined) void reply.header(TOTAL_COUNT_HEADER, String(page.total));
  return page.items;
}
