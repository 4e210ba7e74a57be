/**
 * The options of {@linkcode "./tls.ts"}'s `listenTls` and `connectTls`, in
 * the shapes of `Deno.listenTls` and `Deno.connectTls` plus ffinet's TLS
 * options, and how they are split between the adapter and the TLS layer.
 *
 * @module
 */
import {
  TLS_SERVER_OPTION_KEYS,
  type TlsClientOptions,
  type TlsServerOptions,
} from "../tls/options.ts";
import type { FfiAdapterOptions, FfiTcpConnectOptions, FfiTcpListenOptions } from "./options.ts";

/**
 * Options of `listenTls`: `Deno.listenTls`'s (`hostname`, `port`, `cert`,
 * `key`, `alpnProtocols`, `reusePort`, `keyFormat`), the adapters' own,
 * and ffinet's TLS server options (`certFile`/`keyFile` re-read when they
 * change, `certificates` chosen by SNI, `passphrase`, client certificates
 * with `ca`/`requestCert`, `handshakeTimeoutMs`, ticket keys).
 */
export interface FfiTlsListenOptions extends FfiTcpListenOptions, TlsServerOptions {
  /** As `Deno.listenTls`: the format of `key`; only `"pem"` (the default). */
  keyFormat?: "pem";
}

/**
 * Options of `connectTls`: `Deno.connectTls`'s (`hostname`, `port`,
 * `caCerts`, `alpnProtocols`, `cert`/`key` for a client certificate), the
 * adapters' own, and ffinet's TLS client options (`serverName`,
 * `passphrase`, `handshakeTimeoutMs`, `rejectUnauthorized`).
 */
export interface FfiTlsConnectOptions extends FfiTcpConnectOptions, TlsClientOptions {
  /** As `Deno.connectTls`: the format of `key`; only `"pem"` (the default). */
  keyFormat?: "pem";
}

/**
 * Options of `startTls`: `Deno.startTls`'s (`hostname`, `caCerts`,
 * `alpnProtocols`), ffinet's TLS client options, and the adapter options
 * of the upgraded connection (default: those of the plain one).
 */
export interface FfiStartTlsOptions extends Omit<FfiAdapterOptions, "reactor">, TlsClientOptions {
  /** The server's name, checked against its certificate (and sent as SNI). Default `"127.0.0.1"`. */
  hostname?: string;
  /** As `Deno.startTls`: the format of `key`; only `"pem"` (the default). */
  keyFormat?: "pem";
}

/** The client TLS options by name. */
const CLIENT_KEYS: { [K in keyof Required<TlsClientOptions>]: true } = {
  caCerts: true,
  serverName: true,
  alpnProtocols: true,
  cert: true,
  key: true,
  passphrase: true,
  rejectUnauthorized: true,
  handshakeTimeoutMs: true,
  trustSystemStore: true,
};

/** Copy the defined `keys` of `options` (each getter read once). */
function pick(options: object, keys: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(keys)) {
    const v = (options as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function checkKeyFormat(call: string, options: { keyFormat?: unknown }): void {
  if (options.keyFormat !== undefined && options.keyFormat !== "pem") {
    throw new TypeError(`Cannot ${call}: keyFormat must be "pem"`);
  }
}

/**
 * The TLS server part of `options`, or undefined when it names no
 * certificate (`cert`, `key`, `certFile`, `keyFile` or `certificates`):
 * then the listener is a plain one.
 */
export function tlsServerOptionsOf(options: FfiTlsListenOptions): TlsServerOptions | undefined {
  checkKeyFormat("listenTls", options);
  const tls = pick(options, TLS_SERVER_OPTION_KEYS) as TlsServerOptions;
  const certified = tls.cert !== undefined || tls.key !== undefined ||
    tls.certFile !== undefined || tls.keyFile !== undefined || tls.certificates !== undefined;
  return certified ? tls : undefined;
}

/** The TLS client part of `options`. */
export function tlsClientOptionsOf(
  options: FfiTlsConnectOptions | FfiStartTlsOptions,
  call = "connectTls",
): TlsClientOptions {
  checkKeyFormat(call, options);
  const extra = options as { unsafelyDisableHostnameVerification?: unknown };
  if (extra.unsafelyDisableHostnameVerification === true) {
    throw new TypeError(
      `Cannot ${call}: unsafelyDisableHostnameVerification is not supported ` +
        "(give serverName: the name the certificate carries)",
    );
  }
  // As Deno: caCerts are trusted in addition to the system's authorities.
  return { trustSystemStore: true, ...pick(options, CLIENT_KEYS) } as TlsClientOptions;
}
