import type { ListPage } from '@upc/protocol';
import { type ReactNode, useEffect, useState } from 'react';
import { formatNumber } from '../format.js';
import { type Async, useAsync, useDebounced } from '../hooks.js';
import { Pager, SearchField } from './pager.js';
import { Empty, ErrorState, Pending } from './states.js';

/**
 * A list section as every list page has it: its heading and search box, then the loading, error or
 * empty state, or the list itself (with a notice when a reload failed but an older answer shows).
 * `what` is plural ("PCs"); `empty` is the message when there is nothing to show, else null.
 */
export function ListSection({
  id,
  title,
  search,
  state,
  what,
  empty,
  notice,
  children,
}: {
  id: string;
  title: string;
  /** Shown under the heading whatever the list's state (the result of an action). */
  notice?: ReactNode;
  search?: { label: string; value: string; onChange: (value: string) => void };
  state: Async<unknown>;
  what: string;
  empty: ReactNode;
  children: ReactNode;
}) {
  const body =
    state.data === undefined ? (
      <Pending state={state} what={`the ${what}`} />
    ) : empty !== null ? (
      <Empty>{empty}</Empty>
    ) : (
      <>
        {state.error !== undefined && (
          <ErrorState what={`the latest list of ${what}`} error={state.error} retry={state.reload} />
        )}
        {children}
      </>
    );
  return (
    <section aria-labelledby={`${id}-heading`} className="section">
      <div className="section__head">
        <h2 id={`${id}-heading`}>{title}</h2>
        {search && (
          <SearchField
            id={`${id}-search`}
            label={search.label}
            value={search.value}
            onChange={search.onChange}
          />
        )}
      </div>
      {notice}
      {body}
    </section>
  );
}

/** The pager of a list paged in the browser: `current` of `pages`, moved with `onPage`. */
export function ListPager({
  label,
  current,
  pages,
  onPage,
  children,
}: {
  label: string;
  current: number;
  pages: number;
  onPage: (page: number) => void;
  children: ReactNode;
}) {
  return (
    <Pager
      label={label}
      canPrevious={current > 1}
      canNext={current < pages}
      onPrevious={() => {
        onPage(current - 1);
      }}
      onNext={() => {
        onPage(current + 1);
      }}
    >
      {children}
    </Pager>
  );
}

/** Pages of a list the API pages with a cursor (`before`): the cursors of the pages seen so far. */
export interface CursorPages<C> {
  /** The cursor of the page shown (undefined: the newest). */
  before: C | undefined;
  pageNumber: number;
  older: (cursor: C) => void;
  newer: () => void;
  reset: () => void;
}

export function useCursorPages<C>(): CursorPages<C> {
  const [cursors, setCursors] = useState<(C | undefined)[]>([undefined]);
  return {
    before: cursors[cursors.length - 1],
    pageNumber: cursors.length,
    older: (cursor) => {
      setCursors((c) => [...c, cursor]);
    },
    newer: () => {
      setCursors((c) => c.slice(0, -1));
    },
    reset: () => {
      setCursors([undefined]);
    },
  };
}

/** The pager of a cursor-paged list: `oldest` (the last row shown) is the next page's cursor. */
export function CursorPager<C>({
  label,
  pages,
  hasOlder,
  oldest,
  children,
}: {
  label: string;
  pages: CursorPages<C>;
  hasOlder: boolean;
  oldest: C | undefined;
  children: ReactNode;
}) {
  return (
    <Pager
      label={label}
      canPrevious={pages.pageNumber > 1}
      canNext={hasOlder}
      onPrevious={pages.newer}
      onNext={() => {
        if (oldest !== undefined) pages.older(oldest);
      }}
    >
      {children}
    </Pager>
  );
}

/** How long the search box waits for typing to stop before it asks the server. */
const SEARCH_DELAY_MS = 300;

/** A page of a list the server searches and pages, and the search it answers. */
export interface ServerPage<T> extends ListPage<T> {
  search: string;
  page: number;
}

/** A list the server searches and pages (`limit`, `offset`, `search`; the total in X-Total-Count). */
export interface ServerList<T> {
  state: Async<ServerPage<T>>;
  /** What is in the search box now (the answer may still be for an older search). */
  query: string;
  setQuery: (query: string) => void;
  current: number;
  pages: number;
  setPage: (page: number) => void;
}

export function useServerList<T>(
  load: (query: { search?: string; limit: number; offset: number }) => Promise<ListPage<T>>,
  size: number,
  refreshMs?: number,
): ServerList<T> {
  const [query, setQuery] = useState('');
  const search = useDebounced(query.trim(), SEARCH_DELAY_MS);
  // The page chosen, for the search it was chosen in: a new search starts at page 1, in the same request.
  const [chosen, setChosen] = useState({ search, page: 1 });
  const page = chosen.search === search ? chosen.page : 1;
  const state = useAsync(
    async () => ({
      ...(await load({ search: search || undefined, limit: size, offset: (page - 1) * size })),
      search,
      page,
    }),
    [search, page, size],
    refreshMs,
  );
  const pages = Math.max(1, Math.ceil((state.data?.total ?? 0) / size));
  const setPage = (to: number) => {
    setChosen({ search, page: to });
  };
  // Rows went away (deleted, or a reload found fewer): show the last page there is.
  useEffect(() => {
    if (state.data !== undefined && page > pages) setChosen({ search, page: pages });
  }, [state.data, search, page, pages]);
  // The page shown is the one answered (the rows of the last answer stay while the next one loads).
  const current = Math.min(state.data?.page ?? page, pages);
  return { state, query, setQuery, current, pages, setPage };
}

/**
 * The message for a server list with no rows: `none` when there is nothing at all, else that the
 * search (quoted) matches nothing in `what`; null while there are rows.
 */
function emptyMessage(list: ServerList<unknown>, none: string, what: string): string | null {
  const answer = list.state.data;
  if (answer === undefined || answer.items.length > 0) return null;
  return answer.search === '' ? none : `No ${what} contains “${answer.search}”.`;
}

/** The pager of a server list: "Page 2 of 5 · 93 users". */
export function ServerListPager({
  label,
  list,
  one,
  many,
}: {
  label: string;
  list: ServerList<unknown>;
  one: string;
  many: string;
}) {
  const total = list.state.data?.total ?? 0;
  return (
    <ListPager label={label} current={list.current} pages={list.pages} onPage={list.setPage}>
      Page {list.current} of {list.pages} · {formatNumber(total)} {total === 1 ? one : many}
    </ListPager>
  );
}

/**
 * The ListSection of a list the server searches and pages (`what`, plural, names the search box and
 * the pager), with the pager under its rows. `none` is said when there is nothing at all; a search
 * that matches nothing says that no `noMatch` contains it.
 */
export function ServerListSection({
  id,
  title,
  list,
  what,
  one,
  none,
  noMatch,
  notice,
  children,
}: {
  id: string;
  title: string;
  list: ServerList<unknown>;
  what: string;
  one: string;
  none: string;
  noMatch: string;
  notice?: ReactNode;
  children: ReactNode;
}) {
  return (
    <ListSection
      id={id}
      title={title}
      search={{ label: `Search ${what}`, value: list.query, onChange: list.setQuery }}
      notice={notice}
      state={list.state}
      what={what}
      empty={emptyMessage(list, none, noMatch)}
    >
      {children}
      <ServerListPager label={`Pages of ${what}`} list={list} one={one} many={what} />
    </ListSection>
  );
}
