/**
 * A nats-server for one test file: started on a free loopback port, stopped (and waited for) at
 * the end. Debian packages it as `nats-server`; .ci/run installs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';

export interface NatsServer {
  readonly port: number;
  /** `nats://127.0.0.1:<port>/<service>` */
  url(service: string): string;
  stop(): Promise<void>;
  /** Kill it hard (SIGKILL) and wait; for tests of a lost NATS. */
  kill(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startNatsServer(port?: number): Promise<NatsServer> {
  port ??= await freePort();
  // Debian installs it in /usr/sbin, which a non-root PATH may lack.
  const binary = fs.existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
  const child: ChildProcess = spawn(binary, ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = performance.now() + 15_000;
  while (!(await reachable(port))) {
    if (gone) throw new Error(`nats-server exited at start: ${stderr}`);
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nats-server did not listen on 127.0.0.1:${port} within 15 s: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    if (!gone) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return {
    port,
    url: (service) => `nats://127.0.0.1:${port}/${service}`,
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
  };
}
