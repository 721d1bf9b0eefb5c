/**
 * The second process of test/runtimes/integration.mjs: a server on the name given, run by the
 * same runtime. Prints READY once it listens; exits on SIGTERM after a graceful close.
 */
import { listen } from '../../dist/src/index.js';

const name = process.argv.at(-1);
const server = await listen(name, {
  handlers: {
    add: ({ a, b }) => a + b,
    hang: () => new Promise(() => {}),
  },
});
console.log('READY');
process.on('SIGTERM', () => void server.close({ timeout: 1000 }).then(() => process.exit(0)));
