import { useCallback, useEffect, useRef, useState, useSyncExternalStore, type DependencyList } from 'react';

export interface Async<T> {
  /** The last good answer; kept while a reload runs, so a list does not flash. */
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/**
 * Runs `load` when `deps` change (and every `refreshMs`, if given), keeping its last answer. Answers
 * that arrive after a newer load started, or after unmount, are dropped.
 */
export function useAsync<T>(load: () => Promise<T>, deps: DependencyList, refreshMs?: number): Async<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: true,
  });
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  useEffect(() => {
    loadRef.current = load;
  });

  useEffect(() => {
    let current = true;
    setState((s) => ({ ...s, loading: true }));
    loadRef.current().then(
      (data) => {
        if (current) setState({ data, error: undefined, loading: false });
      },
      (error: unknown) => {
        if (current) setState((s) => ({ data: s.data, error, loading: false }));
      },
    );
    return () => {
      current = false;
    };
    // The caller's deps decide when to load (the rules-of-hooks lint is not used here).
  }, [...deps, generation]);

  useEffect(() => {
    if (refreshMs === undefined) return;
    const timer = setInterval(() => {
      setGeneration((g) => g + 1);
    }, refreshMs);
    return () => {
      clearInterval(timer);
    };
  }, [refreshMs]);

  const reload = useCallback(() => {
    setGeneration((g) => g + 1);
  }, []);
  return { ...state, reload };
}

/** `value`, once it has stayed the same for `ms` (a search box's text, so that typing sends one request). */
export function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => {
      setSettled(value);
    }, ms);
    return () => {
      clearTimeout(timer);
    };
  }, [value, ms]);
  return settled;
}

let now = Date.now();
const clockListeners = new Set<() => void>();
let clock: ReturnType<typeof setInterval> | undefined;

function subscribeClock(listener: () => void): () => void {
  clockListeners.add(listener);
  if (clock === undefined) {
    now = Date.now();
    clock = setInterval(() => {
      now = Date.now();
      for (const l of clockListeners) l();
    }, 15_000);
  }
  return () => {
    clockListeners.delete(listener);
    if (clockListeners.size === 0) {
      clearInterval(clock);
      clock = undefined;
    }
  };
}

const readClock = () => now;

/** The time, updated every 15 seconds, for relative times ("3 min ago") that stay true. */
export function useNow(): number {
  return useSyncExternalStore(subscribeClock, readClock);
}
