/**
 * The TLS options of servers (`TlsListener.listen`) and clients
 * (`connectTls`), in Deno's and Node's shapes, and their checks. Every
 * check runs before anything is created and throws naming the option.
 *
 * @module
 */
import { finiteOption } from "../ffi/validate.ts";
import { MAX_TIMER_MS } from "../reactor/timer_queue.ts";

/** A certificate chain and its key, as PEM text. */
export interface TlsKeyPair {
  /** The certificate, then its intermediates (PEM). */
  cert: string;
  /** The private key (PEM: PKCS#8, PKCS#1 or SEC1; may be encrypted). */
  key: string;
  /** The passphrase of an encrypted `key`. */
  passphrase?: string;
}

/** One certificate of several, chosen by the server name (SNI) the client asks for. */
export interface TlsNamedKeyPair extends TlsKeyPair {
  /**
   * The names this certificate serves: exact ("example.com") or one
   * wildcard label ("*.example.com" matches "a.example.com", not
   * "a.b.example.com"). Compared without case.
   */
  serverNames: string[];
}

/** TLS options of a server. */
export interface TlsServerOptions {
  /**
   * The default certificate (PEM), served when no `certificates` entry
   * matches. Or `certFile`.
   */
  cert?: string;
  /** The default certificate's key (PEM). Or `keyFile`. */
  key?: string;
  /** The passphrase of an encrypted `key` (or `keyFile`). */
  passphrase?: string;
  /**
   * ffinet extension: read the default certificate (PEM) from this file
   * instead of `cert`, and serve a new one when the file changes. Both
   * `certFile` and `keyFile` are checked every
   * {@linkcode CERT_FILE_CHECK_MS} (their inode, size and times, with
   * `stat`); when either changed, the pair is read and loaded again: new
   * handshakes use it, open connections keep the old one. A pair that does
   * not load (half written, a key that does not match yet, a missing file)
   * leaves the previous pair serving and is tried again at the next
   * change; if the files are still the same one check later, it is
   * reported to the listener's `onError` (else the reactor's, else the
   * console). Replace each file atomically (write elsewhere, then
   * `rename`). Needs `--allow-read` for both paths.
   */
  certFile?: string;
  /** ffinet extension: the default certificate's key (PEM) from this file; see `certFile`. */
  keyFile?: string;
  /**
   * More certificates, chosen by SNI. Without `cert`/`key`, the first one
   * is the default for clients that send no (or an unknown) name.
   */
  certificates?: TlsNamedKeyPair[];
  /** Application protocols (ALPN) in server preference order, e.g. `["h2", "http/1.1"]`. */
  alpnProtocols?: string[];
  /** Certificate authorities (PEM) that client certificates must chain to. */
  ca?: string | string[];
  /** Ask clients for a certificate. Default false. */
  requestCert?: boolean;
  /**
   * With `requestCert`: refuse the handshake when the client sends no
   * certificate or one that does not verify against `ca`. Default true.
   * When false, `info.authorized` tells the verdict.
   */
  rejectUnauthorized?: boolean;
  /**
   * Give up on a handshake not done within this long (the connection is
   * reset). Default 10 000 ms; a number of ms in 1 to 2^31 - 1.
   */
  handshakeTimeoutMs?: number;
  /**
   * Session ticket key material, 80 bytes (name 16, HMAC 32, AES 32). Give
   * every server (worker, process) the same bytes and a client resumes on
   * any of them; rotate with `TlsListener.rotateTicketKeys`. Default: a
   * random key of this server, rotated every `ticketKeyRotationMs`.
   */
  ticketKeys?: Uint8Array;
  /**
   * Random ticket keys are replaced this often (the previous two still
   * resume). Default 3 600 000 (an hour); 0 never rotates. Ignored with
   * `ticketKeys` (whoever hands out the keys rotates them).
   */
  ticketKeyRotationMs?: number;
}

/** TLS options of a client. */
export interface TlsClientOptions {
  /** Trust these certificate authorities (PEM) instead of the system store (see `trustSystemStore`). */
  caCerts?: string[];
  /**
   * Trust the system's certificate authorities too. Default: true without
   * `caCerts`, false with them. The Deno-shaped `connectTls` sets it, since
   * Deno adds `caCerts` to its roots.
   */
  trustSystemStore?: boolean;
  /**
   * The name sent as SNI and checked against the certificate. Default: the
   * target's host (IP addresses are checked but not sent as SNI).
   */
  serverName?: string;
  /** Application protocols (ALPN) to offer, in preference order. */
  alpnProtocols?: string[];
  /** A client certificate (PEM) for servers that ask for one. */
  cert?: string;
  /** The client certificate's key (PEM). */
  key?: string;
  /** The passphrase of an encrypted `key`. */
  passphrase?: string;
  /**
   * Verify the server's certificate and name. Default true. False accepts
   * any certificate (`info.authorized` tells the verdict): only for tests.
   */
  rejectUnauthorized?: boolean;
  /** Give up on a handshake not done within this long. Default 10 000 ms. */
  handshakeTimeoutMs?: number;
}

/**
 * The server TLS options by name, for the layers that take them among other
 * options (`serve()`, `listenTls`); the compiler checks the list against
 * `TlsServerOptions`.
 */
export const TLS_SERVER_OPTION_KEYS: { readonly [K in keyof Required<TlsServerOptions>]: true } = {
  cert: true,
  key: true,
  passphrase: true,
  certFile: true,
  keyFile: true,
  certificates: true,
  alpnProtocols: true,
  ca: true,
  requestCert: true,
  rejectUnauthorized: true,
  handshakeTimeoutMs: true,
  ticketKeys: true,
  ticketKeyRotationMs: true,
};

/** How often `certFile` and `keyFile` are checked for a change (ms). */
export const CERT_FILE_CHECK_MS = 1000;

/** The default rotation period of random ticket keys. */
export const DEFAULT_TICKET_KEY_ROTATION_MS = 3_600_000;

/** The default handshake timeout. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** A string option, or a `TypeError` naming it. */
export function stringOption(action: string, name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") {
    throw new TypeError(`Cannot ${action}: ${name} is not a string`);
  }
  return value;
}

/** A list of strings (a single string counts as a list of one), or a `TypeError`. */
export function stringListOption(action: string, name: string, value: unknown): string[] {
  if (value === undefined) return [];
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || list.some((v) => typeof v !== "string")) {
    throw new TypeError(`Cannot ${action}: ${name} is not a list of strings`);
  }
  return [...list] as string[];
}

/** `handshakeTimeoutMs`, checked. */
export function handshakeTimeoutOption(action: string, value: unknown): number {
  return finiteOption(
    action,
    "handshakeTimeoutMs",
    value as number | undefined,
    DEFAULT_HANDSHAKE_TIMEOUT_MS,
    { min: 1, max: MAX_TIMER_MS },
  );
}
