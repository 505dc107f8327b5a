// Polling: the dashboard follows a running federation by asking again every few seconds (an
// EventSource could not send the token in a header, and the token never goes into a URL).

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Polled<T> {
  data?: T;
  error?: Error;
  reload: () => void;
}

/** Calls `load` now and every `intervalMs` while the page is visible; `keys` restart it. */
export function usePoll<T>(load: () => Promise<T>, intervalMs: number, keys: readonly unknown[]): Polled<T> {
  const [state, setState] = useState<{ data?: T; error?: Error }>({});
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      if (document.visibilityState !== 'hidden') {
        try {
          const data = await loadRef.current();
          if (!stopped) setState({ data });
        } catch (err) {
          if (!stopped) setState((previous) => ({ data: previous.data, error: err as Error }));
        }
      }
      if (!stopped && intervalMs > 0) timer = setTimeout(run, intervalMs);
    };
    void run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [...keys, tick, intervalMs]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}
