/**
 * Timeouts: 0 … 2^31-1 ms, or Infinity for none. Node's timers turn any delay above 2^31-1 ms
 * (about 24.8 days) into 1 ms, so such a value would fire at once: it is refused instead.
 */
export const MAX_TIMEOUT = 2 ** 31 - 1;

/** Throws a RangeError unless `value` is a usable timeout (checked when the option is given). */
export function checkTimeout(name: string, value: unknown): void {
  if (value === Infinity) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_TIMEOUT) {
    throw new RangeError(`${name} must be a number of milliseconds from 0 to ${MAX_TIMEOUT} (2^31-1), or Infinity for no timeout (got ${describe(value)}).`);
  }
}

/** The delay to arm a timer with: Infinity arms the longest one (its guard then finds nothing to do). */
export function timerDelay(timeout: number): number {
  return Math.min(timeout, MAX_TIMEOUT);
}

function describe(value: unknown): string {
  try {
    return typeof value === 'string' ? JSON.stringify(value) : String(value);
  } catch {
    return typeof value;
  }
}
