import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type * as http from 'node:http';
import { ConverseError } from '../errors.js';

/**
 * The dashboard's secret. The page shows every peer's pid, uid and gid and the socket path —
 * what the socket itself tells only its owner — so any other local user who can reach the
 * loopback port must be kept out. A random token is made when the dashboard starts and put in the
 * URL it prints (as Jupyter does); every request must carry it: as `?token=`, as
 * `Authorization: Bearer`, or in the cookie the page request sets (HttpOnly, SameSite=Strict,
 * named after the port), which the page's own requests — the event stream included — then send.
 */
export class DashboardToken {
  readonly value: string;
  private readonly digest: Buffer;
  private cookieName = 'ic-dashboard';

  constructor(value?: string) {
    if (value !== undefined && (typeof value !== 'string' || !/^[A-Za-z0-9_-]{22,}$/.test(value))) {
      throw new ConverseError('INVALID_ARGUMENT', 'token must be at least 22 characters of A-Z, a-z, 0-9, "-" and "_" (128 bits or more of randomness); leave it out to get a random one.');
    }
    this.value = value ?? randomBytes(32).toString('base64url');
    this.digest = hash(this.value);
  }

  /** Cookies are per host, not per port: two dashboards on one host need two names. */
  setPort(port: number): void {
    this.cookieName = `ic-dashboard-${port}`;
  }

  /** How the request proved it knows the token, if it did. */
  check(request: http.IncomingMessage, url: URL): 'query' | 'header' | 'cookie' | undefined {
    if (this.matches(url.searchParams.get('token'))) return 'query';
    const authorization = request.headers.authorization;
    if (authorization !== undefined && /^Bearer /i.test(authorization) && this.matches(authorization.slice(7).trim())) return 'header';
    for (const part of (request.headers.cookie ?? '').split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === this.cookieName && this.matches(part.slice(eq + 1).trim())) return 'cookie';
    }
    return undefined;
  }

  /** The Set-Cookie value that lets the page's later requests in. */
  cookie(): string {
    return `${this.cookieName}=${this.value}; HttpOnly; SameSite=Strict; Path=/`;
  }

  private matches(candidate: string | null): boolean {
    if (candidate === null || candidate.length === 0 || candidate.length > 256) return false;
    return timingSafeEqual(hash(candidate), this.digest); // equal-length digests: no length or timing leak
  }
}

function hash(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
