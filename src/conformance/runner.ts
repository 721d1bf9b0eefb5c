import { CaseFailure } from './wire-peer.js';

/**
 * Runs numbered conformance cases one after another and prints the report: one line per case
 * with its number, the docs/PROTOCOL.md section it checks, and why it failed.
 */

export interface ConformanceCase<Context> {
  /** Stable number, printed in the report (S1… for server cases, C1… for client cases). */
  id: string;
  /** The docs/PROTOCOL.md section the case checks, for example "6.7". */
  section: string;
  title: string;
  run(context: Context): Promise<void>;
}

export interface CaseResult {
  id: string;
  section: string;
  title: string;
  ok: boolean;
  /** Why it failed (the first broken expectation). */
  reason?: string;
  ms: number;
}

export interface RunOptions<Context> {
  /** Makes a fresh context for each case and disposes of it afterwards. */
  context: () => Promise<{ context: Context; dispose: () => Promise<void> }>;
  /** Run only these case ids (all when empty). */
  only: string[];
  /** A case that has not finished after this many ms fails. */
  caseTimeout: number;
  onResult?: (result: CaseResult) => void;
}

export async function runCases<Context>(cases: Array<ConformanceCase<Context>>, options: RunOptions<Context>): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const selected = options.only.length === 0 ? cases : cases.filter((c) => options.only.includes(c.id));
  for (const testCase of selected) {
    const started = performance.now();
    let reason: string | undefined;
    let made: Awaited<ReturnType<RunOptions<Context>['context']>> | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      made = await options.context();
      await Promise.race([
        testCase.run(made.context),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new CaseFailure(`the case did not finish within ${options.caseTimeout} ms`)), options.caseTimeout);
        }),
      ]);
    } catch (error) {
      reason = error instanceof CaseFailure ? error.message : `internal error: ${(error as Error)?.stack ?? String(error)}`;
    } finally {
      clearTimeout(timer);
      try {
        await made?.dispose();
      } catch (error) {
        reason ??= `cleaning up failed: ${(error as Error).message}`;
      }
    }
    const result: CaseResult = { id: testCase.id, section: testCase.section, title: testCase.title, ok: reason === undefined, ms: Math.round(performance.now() - started) };
    if (reason !== undefined) result.reason = reason;
    results.push(result);
    options.onResult?.(result);
  }
  return results;
}

/** One report line for a result (and the reason, indented, when it failed). */
export function formatResult(result: CaseResult): string {
  const line = `${result.ok ? 'ok  ' : 'FAIL'}  ${result.id.padEnd(4)} §${result.section.padEnd(5)} ${result.title}`;
  return result.ok ? line : `${line}\n      ${result.reason!.replace(/\n/g, '\n      ')}`;
}

export function summary(results: CaseResult[]): string {
  const failed = results.filter((r) => !r.ok).length;
  return `${results.length} cases: ${results.length - failed} passed, ${failed} failed`;
}
