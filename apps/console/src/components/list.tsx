import { type ReactNode, useState } from 'react';
import type { Async } from '../hooks.js';
import { Pager, SearchField } from './pager.js';
import { Empty, ErrorState, Loading } from './states.js';

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
      state.error !== undefined ? (
        <ErrorState what={`the ${what}`} error={state.error} retry={state.reload} />
      ) : (
        <Loading what={what} />
      )
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
