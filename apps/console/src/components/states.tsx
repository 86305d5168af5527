import type { ReactNode } from 'react';
import { errorMessage } from '../api.js';
import type { Async } from '../hooks.js';

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

/** What shows while there is no answer yet: that `what` is loading, or why it could not be loaded. */
export function Pending({ state, what }: { state: Async<unknown>; what: string }) {
  return state.error !== undefined ? (
    <ErrorState what={what} error={state.error} retry={state.reload} />
  ) : (
    <Loading what={what} />
  );
}

/** What an action came to, as a page says it: an error is an alert, success a status. */
export interface Outcome {
  text: string;
  error: boolean;
}

export function OutcomeNotice({ outcome }: { outcome: Outcome | undefined }) {
  if (outcome === undefined) return null;
  return (
    <p className={outcome.error ? 'form-error' : 'notice'} role={outcome.error ? 'alert' : 'status'}>
      {outcome.text}
    </p>
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
