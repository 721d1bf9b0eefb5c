/**
 * A Stryker ignorer: no mutants in the human-readable message of an error being constructed
 * (`new ConverseError(code, message)`, `new Error(message)`, `new RangeError(message)` …).
 * The error code, and the reasons the pre-scan returns, are still mutated: tests assert those.
 * Wording is checked where it carries a fact (a size, a byte), not word by word.
 */
import { PluginKind, declareValuePlugin } from '@stryker-mutator/api/plugin';

/** Constructor name → index of its message argument. */
const MESSAGE_ARGUMENT = new Map([
  ['ConverseError', 1],
  ['Error', 0],
  ['RangeError', 0],
  ['TypeError', 0],
]);

function isErrorMessage(path) {
  if (!path.isStringLiteral() && !path.isTemplateLiteral()) return false;
  const parent = path.parentPath;
  if (parent === null || !parent.isNewExpression()) return false;
  const callee = parent.node.callee;
  if (callee.type !== 'Identifier' || !MESSAGE_ARGUMENT.has(callee.name)) return false;
  return parent.node.arguments[MESSAGE_ARGUMENT.get(callee.name)] === path.node;
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'error-messages', {
    shouldIgnore(path) {
      return isErrorMessage(path) ? 'An error message: its wording is not behaviour (codes and scan reasons are still mutated).' : undefined;
    },
  }),
];
