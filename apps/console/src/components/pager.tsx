import type { ReactNode } from 'react';

/** "Previous page" · where we are · "Next page", as the Users list has it. */
export function Pager({
  label,
  canPrevious,
  canNext,
  onPrevious,
  onNext,
  children,
}: {
  label: string;
  canPrevious: boolean;
  canNext: boolean;
  onPrevious: () => void;
  onNext: () => void;
  children: ReactNode;
}) {
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" disabled={!canPrevious} onClick={onPrevious}>
        Previous page
      </button>
      <p aria-live="polite">{children}</p>
      <button type="button" disabled={!canNext} onClick={onNext}>
        Next page
      </button>
    </nav>
  );
}

/** The slice of `items` on `page` (1-based, clamped), for lists paged in the browser. */
export function pageOf<T>(
  items: T[],
  page: number,
  size: number,
): { shown: T[]; current: number; pages: number } {
  const pages = Math.max(1, Math.ceil(items.length / size));
  const current = Math.min(Math.max(1, page), pages);
  return { shown: items.slice((current - 1) * size, current * size), current, pages };
}

/** A search box labelled `label`, as on the Users page. */
export function SearchField({
  id,
  label,
  value,
  onChange,
}: {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
}) {
  return (
    <div className="field field--inline">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type="search"
        value={value}
        autoComplete="off"
        spellCheck={false}
        onChange={(e) => {
          onChange(e.target.value);
        }}
      />
    </div>
  );
}
