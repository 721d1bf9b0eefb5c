/**
 * The language-neutral notation the test vectors (test-vectors/*.json) and the conformance kit
 * use for the meaning of a MessagePack value, and its mapping to and from JavaScript values
 * (docs/PROTOCOL.md §5.4). JSON alone cannot say "uint 64" or "a Set", so every non-JSON type is
 * a one-key object:
 *
 *   null, true, false, "string"            nil, booleans, str
 *   {"int": "-12"}                          an integer (decimal string: exact beyond 2^53)
 *   {"float": 1.5} / {"float": "NaN"}       a float ("NaN", "Infinity", "-Infinity" as strings)
 *   {"bin": "0102"}                         bin, as hex
 *   {"array": [ … ]}                        array
 *   {"map": [["key", value], …]}            a map with string keys (a plain object in JavaScript)
 *   {"Map": [[key, value], …]}              the Map extension (0x4d): keys of any type
 *   {"Set": [ … ]}                          the Set extension (0x53)
 *   {"undefined": true}                     the undefined extension (0x00)
 *   {"timestamp": {"seconds": "…", "nanoseconds": n}}   the timestamp extension (-1)
 */

export type TypedValue =
  | null
  | boolean
  | string
  | { int: string }
  | { float: number | 'NaN' | 'Infinity' | '-Infinity' }
  | { bin: string }
  | { array: TypedValue[] }
  | { map: Array<[string, TypedValue]> }
  | { Map: Array<[TypedValue, TypedValue]> }
  | { Set: TypedValue[] }
  | { undefined: true }
  | { timestamp: { seconds: string; nanoseconds: number } };

const SAFE = 2n ** 53n;

/** The JavaScript value the reference implementation sends for `typed` (integers beyond ±2^53 as bigint). */
export function toJs(typed: TypedValue): unknown {
  if (typed === null || typeof typed !== 'object') return typed;
  if ('int' in typed) {
    const n = BigInt(typed.int);
    return n >= -SAFE && n <= SAFE && Number.isSafeInteger(Number(n)) ? Number(n) : n;
  }
  if ('float' in typed) return typeof typed.float === 'number' ? typed.float : Number(typed.float);
  if ('bin' in typed) return Buffer.from(typed.bin, 'hex');
  if ('array' in typed) return typed.array.map(toJs);
  if ('map' in typed) return Object.fromEntries(typed.map.map(([k, v]) => [k, toJs(v)]));
  if ('Map' in typed) return new Map(typed.Map.map(([k, v]) => [toJs(k), toJs(v)]));
  if ('Set' in typed) return new Set(typed.Set.map(toJs));
  if ('undefined' in typed) return undefined;
  if ('timestamp' in typed) return new Date(Number(BigInt(typed.timestamp.seconds) * 1000n) + Math.floor(typed.timestamp.nanoseconds / 1e6));
  throw new Error(`unknown typed value ${JSON.stringify(typed)}`);
}

/**
 * Whether a decoded JavaScript value has the meaning `typed`, under the reference mapping of
 * docs/PROTOCOL.md §5.4: an integer within ±2^53 is a number, beyond it a bigint; a timestamp is a
 * Date of millisecond precision. Returns undefined when it matches, else where it differs.
 */
export function differs(actual: unknown, typed: TypedValue, path = 'value'): string | undefined {
  const got = (): string => `${path}: expected ${describeTyped(typed)}, got ${describeJs(actual)}`;
  if (typed === null || typeof typed !== 'object') return Object.is(actual, typed) ? undefined : got();
  if ('int' in typed) {
    const n = BigInt(typed.int);
    if (n >= -SAFE && n <= SAFE) return typeof actual === 'number' && Number.isInteger(actual) && BigInt(actual) === n ? undefined : got();
    return typeof actual === 'bigint' && actual === n ? undefined : got();
  }
  if ('float' in typed) {
    const expected = typeof typed.float === 'number' ? typed.float : Number(typed.float);
    return typeof actual === 'number' && Object.is(actual, expected) ? undefined : got();
  }
  if ('bin' in typed) return actual instanceof Uint8Array && Buffer.from(actual).toString('hex') === typed.bin ? undefined : got();
  if ('array' in typed) {
    if (!Array.isArray(actual) || actual.length !== typed.array.length) return got();
    for (let i = 0; i < actual.length; i++) {
      const problem = differs(actual[i], typed.array[i]!, `${path}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  if ('map' in typed) {
    if (typeof actual !== 'object' || actual === null || Object.getPrototypeOf(actual) !== Object.prototype) return got();
    const keys = Object.keys(actual);
    if (keys.length !== typed.map.length) return got();
    for (const [key, value] of typed.map) {
      if (!Object.hasOwn(actual, key)) return `${path}: the key ${JSON.stringify(key)} is missing`;
      const problem = differs((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
      if (problem) return problem;
    }
    return undefined;
  }
  if ('Map' in typed) {
    if (!(actual instanceof Map) || actual.size !== typed.Map.length) return got();
    const entries = [...actual.entries()];
    for (let i = 0; i < entries.length; i++) {
      const problem = differs(entries[i]![0], typed.Map[i]![0], `${path}<key ${i}>`) ?? differs(entries[i]![1], typed.Map[i]![1], `${path}<value ${i}>`);
      if (problem) return problem;
    }
    return undefined;
  }
  if ('Set' in typed) {
    if (!(actual instanceof Set) || actual.size !== typed.Set.length) return got();
    const members = [...actual];
    for (let i = 0; i < members.length; i++) {
      const problem = differs(members[i], typed.Set[i]!, `${path}<member ${i}>`);
      if (problem) return problem;
    }
    return undefined;
  }
  if ('undefined' in typed) return actual === undefined ? undefined : got();
  if ('timestamp' in typed) {
    const expected = (toJs(typed) as Date).getTime();
    return actual instanceof Date && actual.getTime() === expected ? undefined : got();
  }
  return `${path}: unknown typed value ${JSON.stringify(typed)}`;
}

function describeTyped(typed: TypedValue): string {
  const text = JSON.stringify(typed);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** A short description of a decoded value, for failure reports. */
export function describeJs(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Map) return `Map(${value.size})`;
  if (value instanceof Set) return `Set(${value.size})`;
  if (value instanceof Date) return `Date(${value.getTime()})`;
  if (value instanceof Uint8Array) return `bytes(${Buffer.from(value).toString('hex').slice(0, 40)})`;
  let text: string;
  try {
    text = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v === undefined ? '<undefined>' : v));
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
