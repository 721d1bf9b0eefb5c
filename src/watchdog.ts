/**
 * One process-wide timer that looks after every open connection's slow deadlines: a frame that
 * is taking too long to arrive (slowloris), and keepalive. One interval for all connections,
 * instead of a timer each, keeps ten thousand idle connections cheap; the checks read counters
 * the hot path maintains anyway, so receiving a message costs nothing extra.
 */
export interface Watched {
  /** Called every tick with the current time (performance.now()). */
  watchdogTick(now: number): void;
}

const TICK_MS = 100;
const watched = new Set<Watched>();
let timer: NodeJS.Timeout | undefined;

export function watch(item: Watched): void {
  watched.add(item);
  if (timer === undefined) {
    timer = setInterval(tick, TICK_MS);
    timer.unref();
  }
}

export function unwatch(item: Watched): void {
  watched.delete(item);
  if (watched.size === 0 && timer !== undefined) {
    clearInterval(timer);
    timer = undefined;
  }
}

function tick(): void {
  const now = performance.now();
  for (const item of watched) item.watchdogTick(now);
}
