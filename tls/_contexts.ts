/**
 * TLS options turned into OpenSSL contexts: a server's default context and
 * one per extra certificate (chosen by SNI), or a client's context. All the
 * checks a server makes at start happen here: every certificate is parsed
 * and inside its validity period, every key decrypts and matches its
 * certificate, every CA parses. Internal to tls/.
 *
 * @module
 */
import { SslContext } from "../ffi/openssl_context.ts";
import { SslPool } from "../ffi/openssl_ssl.ts";
import type { TicketKeyring } from "../ffi/openssl_tickets.ts";
import { OpenSslError } from "../ffi/openssl_error.ts";
import { parseCertificates, parsePrivateKey } from "../ffi/openssl_x509.ts";
import { booleanOption } from "../ffi/validate.ts";
import { recordLayerControl } from "./_record.ts";
import {
  handshakeTimeoutOption,
  stringListOption,
  stringOption,
  type TlsClientOptions,
  type TlsKeyPair,
  type TlsServerOptions,
} from "./options.ts";

/** A server's contexts: `main` answers every ClientHello and may switch to another. */
export interface ServerContexts {
  main: SslContext;
  /**
   * Where connections get their `SSL` (`Ssl.fromPool`): finished ones are
   * cleared and kept for the next. Keeps none when client certificates are
   * requested (the last verification result would outlive its connection).
   */
  pool: SslPool;
  handshakeTimeoutMs: number;
  /** Stop using them: each is freed once its last connection is gone. */
  close(): void;
  /** Send errors thrown inside any of their callbacks to `sink`. */
  reportTo(sink: (error: unknown) => void): void;
}

/** A client's context and the per-connection settings. */
export interface ClientContext {
  context: SslContext;
  serverName: string | undefined;
  alpnProtocols: string[];
  rejectUnauthorized: boolean;
  handshakeTimeoutMs: number;
}

/** `e` again with `label` in its action ("load key (certificates[1])"); other errors as they are. */
function labelled(e: unknown, label: string): unknown {
  if (!(e instanceof OpenSslError)) return e;
  return new OpenSslError(`${e.action} (${label})`, e.errors, e.detail);
}

/** Load a key pair into `ctx`; errors name the pair (`label`). */
function useKeyPair(ctx: SslContext, pair: TlsKeyPair, label: string): void {
  if (typeof pair !== "object" || pair === null) {
    throw new TypeError(`Cannot load ${label}: it is not an object with cert and key`);
  }
  const cert = stringOption(`load certificate (${label})`, "cert", pair.cert);
  const key = stringOption(`load key (${label})`, "key", pair.key);
  const passphrase = stringOption(`load key (${label})`, "passphrase", pair.passphrase);
  if (cert === undefined || cert.trim() === "") {
    throw new OpenSslError(
      `load certificate (${label})`,
      [],
      "cert is missing (PEM text expected)",
    );
  }
  if (key === undefined || key.trim() === "") {
    throw new OpenSslError(`load key (${label})`, [], "key is missing (PEM text expected)");
  }
  let chain;
  try {
    chain = parseCertificates(cert);
  } catch (e) {
    throw labelled(e, label);
  }
  try {
    chain[0]!.checkValidity("use certificate");
    using pkey = parsePrivateKey(key, passphrase);
    ctx.useCertificate(chain, pkey);
  } catch (e) {
    throw labelled(e, label);
  } finally {
    for (const c of chain) c.free();
  }
}

/** Trust the PEM CAs in `pems` in `ctx`. */
function trustPems(ctx: SslContext, pems: string[], action: string): void {
  for (const pem of pems) {
    const certs = parseCertificates(pem, action);
    try {
      ctx.trust(certs);
    } finally {
      for (const c of certs) c.free();
    }
  }
}

/** Cleared `SSL`s a server keeps for its next connections (a burst of closes refills it). */
const SERVER_SSL_POOL = 32;

/** Whether `name` (lower case) matches the pattern (exact or one wildcard label). */
export function serverNameMatches(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  if (!p.startsWith("*.")) return p === name;
  const dot = name.indexOf(".");
  return dot > 0 && name.slice(dot) === p.slice(1);
}

/** Check and build a server's contexts; nothing is left allocated when it throws. */
export function serverContexts(options: TlsServerOptions, tickets: TicketKeyring): ServerContexts {
  const action = "create TLS server";
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot ${action}: tls options must be an object`);
  }
  const handshakeTimeoutMs = handshakeTimeoutOption(action, options.handshakeTimeoutMs);
  const alpn = options.alpnProtocols;
  if (alpn !== undefined) stringListOption(action, "alpnProtocols", alpn);
  const cas = stringListOption(action, "ca", options.ca);
  const requestCert = booleanOption(action, "requestCert", options.requestCert, false);
  const rejectUnauthorized = booleanOption(
    action,
    "rejectUnauthorized",
    options.rejectUnauthorized,
    true,
  );
  const named = options.certificates ?? [];
  if (!Array.isArray(named)) throw new TypeError(`Cannot ${action}: certificates is not an array`);
  const files = certFiles(options);
  const hasDefault = files !== undefined || options.cert !== undefined ||
    options.key !== undefined;
  if (!hasDefault && named.length === 0) {
    throw new OpenSslError(action, [], "no certificate: give cert and key (or certificates)");
  }
  if (requestCert && rejectUnauthorized && cas.length === 0) {
    throw new TypeError(
      `Cannot ${action}: requestCert with rejectUnauthorized needs ca (the authorities client certificates must chain to)`,
    );
  }
  for (const [i, pair] of named.entries()) {
    const names = stringListOption(action, `certificates[${i}].serverNames`, pair?.serverNames);
    if (names.length === 0 && (hasDefault || i > 0)) {
      throw new TypeError(`Cannot ${action}: certificates[${i}].serverNames is empty`);
    }
  }
  const made: SslContext[] = [];
  const close = () => made.forEach((c) => c.close());
  try {
    const configure = (pair: TlsKeyPair, label: string): SslContext => {
      const ctx = SslContext.create("server");
      made.push(ctx);
      if (recordLayerControl.userspace) ctx.logTrafficSecrets();
      useKeyPair(ctx, pair, label);
      if (alpn !== undefined) ctx.selectAlpn(alpn);
      if (cas.length > 0) trustPems(ctx, cas, "load ca");
      ctx.verifyPeer({ request: requestCert, require: rejectUnauthorized });
      return ctx;
    };
    const main = hasDefault
      ? configure(
        {
          cert: files === undefined
            ? options.cert!
            : readPem(files.cert, "certificate", "certFile"),
          key: files === undefined ? options.key! : readPem(files.key, "key", "keyFile"),
          ...passphraseOf(options.passphrase),
        },
        "default certificate",
      )
      : configure(named[0]!, "certificates[0]");
    const byName: Array<{ patterns: string[]; ctx: SslContext }> = [];
    for (const [i, pair] of named.entries()) {
      const ctx = !hasDefault && i === 0 ? main : configure(pair, `certificates[${i}]`);
      byName.push({ patterns: pair.serverNames ?? [], ctx });
    }
    // Tickets are sealed and opened by the context a handshake started on.
    main.useTicketKeys(tickets);
    if (byName.length > 0) {
      main.onServerName((name) => {
        if (name === undefined) return undefined;
        const lower = name.toLowerCase();
        return byName.find((e) => e.patterns.some((p) => serverNameMatches(p, lower)))?.ctx;
      });
    }
    const reportTo = (sink: (error: unknown) => void) => {
      for (const c of made) c.onCallbackError = sink;
    };
    const pool = new SslPool(main, requestCert ? 0 : SERVER_SSL_POOL);
    const closeAll = () => {
      pool.close();
      close();
    };
    return { main, pool, handshakeTimeoutMs, close: closeAll, reportTo };
  } catch (e) {
    close();
    throw e;
  }
}

/**
 * The `certFile`/`keyFile` paths, checked (both or neither, and not with
 * `cert`/`key`); undefined when the certificate is given as text.
 */
export function certFiles(options: TlsServerOptions): { cert: string; key: string } | undefined {
  const action = "create TLS server";
  const cert = stringOption(action, "certFile", options.certFile);
  const key = stringOption(action, "keyFile", options.keyFile);
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    throw new TypeError(`Cannot ${action}: certFile and keyFile go together`);
  }
  if (options.cert !== undefined || options.key !== undefined) {
    throw new TypeError(`Cannot ${action}: give cert and key, or certFile and keyFile, not both`);
  }
  if (cert === "" || key === "" || cert.includes("\0") || key.includes("\0")) {
    throw new TypeError(`Cannot ${action}: certFile and keyFile must be file paths`);
  }
  return { cert, key };
}

/** The PEM text in `path`, or an `OpenSslError` naming the option and the file. */
function readPem(path: string, what: string, option: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new OpenSslError(
      `load ${what} (default certificate)`,
      [],
      `cannot read ${option} ${JSON.stringify(path)}: ${why}`,
    );
  }
}

/**
 * What identifies the current contents of `certFile` and `keyFile`
 * without reading them (device, inode, size, change and modification
 * times; a file that cannot be stat'ed counts by its error's name), or
 * undefined without them. A rename over a file or a write into it changes
 * it; so does a symbolic link pointed elsewhere.
 */
export function certFilesSignature(options: TlsServerOptions): string | undefined {
  const files = certFiles(options);
  if (files === undefined) return undefined;
  const one = (path: string): string => {
    try {
      const st = Deno.statSync(path);
      return `${st.dev}:${st.ino}:${st.size}:${st.mtime?.getTime()}:${st.ctime?.getTime()}`;
    } catch (e) {
      return `!${e instanceof Error ? e.name : "error"}`;
    }
  };
  return `${one(files.cert)}|${one(files.key)}`;
}

function passphraseOf(passphrase: string | undefined): { passphrase?: string } {
  return passphrase === undefined ? {} : { passphrase };
}

/**
 * Client contexts already built, by what shaped them (CAs, client
 * certificate, verification): loading the system's CA bundle alone takes
 * tens of ms, too much for every connection. The cache holds one reference
 * to each; the oldest is dropped past {@linkcode CLIENT_CONTEXT_CACHE}
 * (and freed once its last connection closes).
 */
const clientContexts = new Map<string, SslContext>();
/** How many client contexts stay cached (per thread). */
const CLIENT_CONTEXT_CACHE = 16;

/**
 * Check and build (or reuse) a client's context. The returned context holds
 * a reference for the caller: `release()` it once the connection's `Ssl`
 * is made (or on failure).
 */
export function clientContext(options: TlsClientOptions, host: string | undefined): ClientContext {
  const action = "connect with TLS";
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot ${action}: tls options must be an object`);
  }
  const handshakeTimeoutMs = handshakeTimeoutOption(action, options.handshakeTimeoutMs);
  const cas = stringListOption(action, "caCerts", options.caCerts);
  const system = booleanOption(
    action,
    "trustSystemStore",
    options.trustSystemStore,
    cas.length === 0,
  );
  const serverName = stringOption(action, "serverName", options.serverName) ?? host;
  const alpnProtocols = stringListOption(action, "alpnProtocols", options.alpnProtocols);
  const rejectUnauthorized = booleanOption(
    action,
    "rejectUnauthorized",
    options.rejectUnauthorized,
    true,
  );
  const cert = stringOption(action, "cert", options.cert);
  const key = stringOption(action, "key", options.key);
  const passphrase = stringOption(action, "passphrase", options.passphrase);
  const cacheKey = JSON.stringify([cas, system, cert, key, passphrase, rejectUnauthorized]);
  let context = clientContexts.get(cacheKey);
  if (context === undefined) {
    context = SslContext.create("client");
    try {
      if (cas.length > 0) trustPems(context, cas, "load caCerts");
      if (system) context.trustSystemStore();
      if (cert !== undefined || key !== undefined) {
        useKeyPair(
          context,
          { cert: cert!, key: key!, ...passphraseOf(passphrase) },
          "client certificate",
        );
      }
      context.verifyPeer({ request: true, require: rejectUnauthorized });
    } catch (e) {
      context.close();
      throw e;
    }
    clientContexts.set(cacheKey, context);
    if (clientContexts.size > CLIENT_CONTEXT_CACHE) {
      const [oldestKey, oldest] = clientContexts.entries().next().value!;
      clientContexts.delete(oldestKey);
      oldest.close();
    }
  }
  context.retain();
  return { context, serverName, alpnProtocols, rejectUnauthorized, handshakeTimeoutMs };
}
