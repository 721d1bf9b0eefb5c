/** A server on a fresh socket name, closed after the test (with a 300 ms close timeout). */
import { listen, type Server } from '../../src/index.js';
import { onCleanup, socketName } from './cleanup.js';

export async function listening(options: Parameters<typeof listen>[1]): Promise<{ name: string; server: Server }> {
  const name = socketName();
  const server = await listen(name, options);
  onCleanup(() => server.close({ timeout: 300 }));
  return { name, server };
}
