// Keeping what the page shows fresh without a reload: pollers that back off while nothing
// changes, pause while the page is hidden, and one gate that holds the page to at most one
// request per second for each operation it shows.

const ONE_PER_SECOND = 1000;

/** Spaces the requests made for each operation at least a second apart. */
class RateGate {
  #last = new Map();

  /** Resolves when a request for `name` may start, and counts it as started. */
  async turn(name, signal) {
    const now = performance.now();
    const start = Math.max(now, (this.#last.get(name) ?? -Infinity) + ONE_PER_SECOND);
    this.#last.set(name, start);
    if (start > now) {
      await delay(start - now, signal);
    }
  }
}

export const perOperation = new RateGate();

/** Resolves after `ms`, or at once (rejecting) when `signal` aborts. */
export function delay(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal?.addEventListener("abort", stop, { once: true });
  });
}

/**
 * Runs `task` (an async function returning whether what it read changed) again and again:
 * `min` ms after a change, then backing off by `factor` up to `max` ms while nothing
 * changes (and after errors). Hidden pages are not polled. One run at a time.
 */
export class Poller {
  constructor(task, { min = 2000, max = 15000, factor = 1.6 } = {}) {
    this.task = task;
    this.min = min;
    this.max = max;
    this.factor = factor;
    this.interval = min;
    this.controller = null;
    this.wake = null;
    this.again = false;
  }

  start() {
    if (this.controller) {
      return;
    }
    this.controller = new AbortController();
    this.#loop(this.controller.signal);
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
  }

  /** Run now (after the current run, if one is under way), from the shortest interval. */
  now() {
    this.interval = this.min;
    this.again = true;
    this.wake?.();
  }

  async #loop(signal) {
    while (!signal.aborted) {
      await visible(signal);
      if (signal.aborted) {
        return;
      }
      let changed;
      this.again = false;
      try {
        changed = await this.task(signal);
      } catch (error) {
        if (signal.aborted) {
          return;
        }
        changed = false;
        if (error?.code === 16) {
          return; // signed out: the page shows the sign-in form
        }
      }
      this.interval = changed ? this.min : Math.min(this.max, this.interval * this.factor);
      if (!this.again) {
        await this.#pause(this.interval, signal);
      }
    }
  }

  async #pause(ms, signal) {
    const woken = new Promise((resolve) => {
      this.wake = resolve;
    });
    try {
      await Promise.race([delay(ms, signal), woken]);
    } catch {
      // stopped
    } finally {
      this.wake = null;
    }
  }
}

/** Resolves once the page is visible (at once when it is), or when `signal` aborts. */
function visible(signal) {
  if (document.visibilityState !== "hidden") {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const done = () => {
      document.removeEventListener("visibilitychange", check);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const check = () => {
      if (document.visibilityState !== "hidden") {
        done();
      }
    };
    document.addEventListener("visibilitychange", check);
    signal.addEventListener("abort", done, { once: true });
  });
}
