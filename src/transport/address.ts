import * as dns from 'node:dns/promises';
import * as net from 'node:net';
import { ConverseError } from '../errors.js';

/**
 * What a name given to `listen` or `connect` means. Plain names and paths are local sockets (Unix
 * sockets, Windows pipes); a URL picks a network transport by its scheme. Nothing else in the
 * library looks at the scheme.
 */
export type TransportAddress =
  | { readonly kind: 'local'; readonly name: string }
  | { readonly kind: 'tcp' | 'tls'; readonly name: string; readonly host: string; readonly port: number }
  | { readonly kind: 'nats'; readonly name: string; readonly host: string; readonly port: number; readonly service: string };

export type NetworkAddress = Extract<TransportAddress, { kind: 'tcp' | 'tls' }>;
export type NatsAddress = Extract<TransportAddress, { kind: 'nats' }>;

const DEFAULT_NATS_PORT = 4222;
/** A NATS subject token per dot-separated part: no wildcards, no whitespace. */
const SERVICE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
/** `scheme://…` where the scheme is one letter or more: a Windows drive letter path `C:\…` is not a URL. */
const URL_LIKE = /^[A-Za-z][A-Za-z0-9+.-]+:\/\//;

export function parseAddress(name: string): TransportAddress {
  if (typeof name !== 'string' || !URL_LIKE.test(name)) return { kind: 'local', name };
  const scheme = name.slice(0, name.indexOf(':')).toLowerCase();
  if (scheme !== 'tcp' && scheme !== 'tls' && scheme !== 'nats') {
    throw new ConverseError('INVALID_NAME', `Unknown transport "${scheme}://" in "${name}": use a local socket name, tcp://host:port, tls://host:port or nats://host:port/<service>.`);
  }
  let url: URL;
  try {
    url = new URL(name);
  } catch (error) {
    throw new ConverseError('INVALID_NAME', `"${name}" is not a valid ${scheme}:// address (expected ${scheme}://host:port${scheme === 'nats' ? '/<service>' : ''}).`, { cause: error });
  }
  if (url.username || url.password) {
    throw new ConverseError('INVALID_NAME', `"${scheme}://" names carry no credentials (they would end up in logs and process listings): give them in the options instead.`);
  }
  if (url.search || url.hash) throw new ConverseError('INVALID_NAME', `"${name}" has a query or fragment; a ${scheme}:// name is only host, port${scheme === 'nats' ? ' and service' : ''}.`);
  // URL keeps IPv6 hosts in brackets; node:net wants them bare.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') throw new ConverseError('INVALID_NAME', `"${name}" has no host.`);
  if (scheme === 'nats') {
    const port = url.port === '' ? DEFAULT_NATS_PORT : Number(url.port);
    const service = decodeURIComponent(url.pathname.replace(/^\//, ''));
    if (!SERVICE.test(service)) {
      throw new ConverseError(
        'INVALID_NAME',
        `"${name}" needs a service name after the host: nats://host:port/<service>, where the service is letters, digits, "-" and "_", in dot-separated parts (got "${service}").`,
      );
    }
    return { kind: 'nats', name, host, port, service };
  }
  if (url.port === '') throw new ConverseError('INVALID_NAME', `"${name}" has no port: ${scheme}://host:port (port 0 picks a free one when listening).`);
  if (url.pathname !== '' && url.pathname !== '/') throw new ConverseError('INVALID_NAME', `"${name}" has a path; a ${scheme}:// name is only host and port.`);
  return { kind: scheme, name, host, port: Number(url.port) };
}

/** Whether a literal address is on the loopback interface (127.0.0.0/8, ::1, ::ffff:127.x). */
export function isLoopbackIp(ip: string): boolean {
  if (net.isIPv4(ip)) return ip.startsWith('127.');
  if (net.isIPv6(ip)) {
    const lower = ip.toLowerCase();
    return lower === '::1' || lower === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(lower);
  }
  return false;
}

/**
 * Whether every address `host` stands for is loopback. A literal is judged as it is; a host name
 * is resolved and must resolve only to loopback addresses ("localhost" on a normal system). An
 * unspecified address (0.0.0.0, ::) means every interface: not loopback.
 */
export async function isLoopbackHost(host: string): Promise<boolean> {
  if (net.isIP(host) !== 0) return isLoopbackIp(host);
  try {
    const addresses = await dns.lookup(host, { all: true });
    return addresses.length > 0 && addresses.every((a) => isLoopbackIp(a.address));
  } catch {
    return false; // unresolvable: let the connect or bind report it
  }
}

/**
 * Plain TCP carries everything in the clear and proves nothing about either side: allowed on
 * loopback, refused elsewhere unless the user opts in with `allowInsecureNetwork: true`.
 */
export async function checkInsecureNetwork(address: NetworkAddress, allowInsecureNetwork: boolean | undefined, verb: 'listen on' | 'connect to'): Promise<void> {
  if (address.kind !== 'tcp' || allowInsecureNetwork === true) return;
  if (await isLoopbackHost(address.host)) return;
  throw new ConverseError(
    'INSECURE_NETWORK',
    `Refusing to ${verb} "${address.name}": plain tcp:// is unencrypted and unauthenticated, and "${address.host}" is not a loopback address, so anyone on the network could read or forge the conversation. Use tls:// with certificates (the tls option), or pass allowInsecureNetwork: true if the network is trusted.`,
  );
}
