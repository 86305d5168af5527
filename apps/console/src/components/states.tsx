import type { ReactNode } from 'react';
import { errorMessage } from '../api.js';

/** A list still loading. */
export function Loading({ what }: { what: string }) {
  return (
    <p className="state state--loading" role="status">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </p>
  );
}

/** A list that could not be loaded, with a way to try again. */
export function ErrorState({ what, error, retry }: { what: string; error: unknown; retry?: () => void }) {
  return (
    <div className="state state--error" role="alert">
      <p>
        <strong>Could not load {what}.</strong> {errorMessage(error)}
      </p>
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** A list with nothing in it. */
export function Empty({ children }: { children: ReactNode }) {
  return <p className="state state--empty">{children}</p>;
}

/** A wide table scrolls inside this box (focusable, so a keyboard can scroll it) instead of the page. */
export function TableScroll({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-scroll" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}
