/**
 * `SslContext`: one `SSL_CTX *` with ffinet's TLS policy applied when it is
 * made, and the callbacks OpenSSL runs during handshakes.
 *
 * Policy (not optional): TLS 1.2 and 1.3 only; OpenSSL's default security
 * level and cipher lists; no renegotiation; no compression; session tickets
 * on (one per TLS 1.3 handshake); `SSL_MODE_RELEASE_BUFFERS` (an idle
 * connection gives its record buffers back);
 * `SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER` (a retried write may come from
 * another JavaScript buffer); `SSL_MODE_NO_AUTO_CHAIN` (the chain served is
 * the one given, never one built from the trust store at every handshake).
 *
 * Callbacks (server name, ALPN, certificate verification) are
 * `Deno.UnsafeCallback`s that OpenSSL calls synchronously on this thread
 * during `SSL_do_handshake`. A JavaScript exception cannot cross into C, and
 * OpenSSL would read a 0 as success, so every callback catches everything,
 * hands the error to {@linkcode SslContext.onCallbackError} and fails the
 * handshake (fail closed).
 *
 * A context is reference-counted on the JavaScript side: each `Ssl` made
 * from it (and each context a server-name callback switched to) holds a
 * reference, so {@linkcode SslContext.close} frees the `SSL_CTX` and closes
 * its callbacks only when the last connection using them is gone.
 *
 * @module
 */
import {
  ctxAdd0ChainCert,
  ctxGetMaxProtoVersion,
  ctxGetMinProtoVersion,
  ctxSetMaxProtoVersion,
  ctxSetMinProtoVersion,
  ctxSetMode,
  ctxSetServernameCallback,
  openssl,
  OPENSSL_NPN,
  SSL_MODE,
  SSL_OP,
  SSL_TLSEXT_ERR,
  SSL_VERIFY,
  TLS_VERSION,
  TLSEXT_NAMETYPE_HOST_NAME,
} from "./openssl.ts";
import { cString, readCString } from "./openssl_bio.ts";
import { clearOpenSslErrors, OpenSslError, takeOpenSslErrors } from "./openssl_error.ts";
import type { PrivateKey, X509Certificate } from "./openssl_x509.ts";
import { TicketKeyring } from "./openssl_tickets.ts";
import { keyLogCallback } from "./openssl_aead.ts";

/** Which side of the handshake a context serves. */
export type SslRole = "server" | "client";

/** The session id context servers set (needed to resume with client certificates). */
const SESSION_ID_CONTEXT = new TextEncoder().encode("ffinet");
/**
 * The TLS 1.2 cipher suites: forward-secret AEAD only (ECDHE with AES-GCM or
 * ChaCha20-Poly1305), as Mozilla's "intermediate" profile; no CBC, RSA key
 * exchange, SHA-1 MACs or anonymous suites. TLS 1.3 keeps OpenSSL's suites
 * (all AEAD).
 */
const TLS12_CIPHERS = cString(
  "set cipher list",
  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" +
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
);
/** The longest ALPN protocol name (one length byte). */
const MAX_ALPN_NAME = 255;

const SERVERNAME_CB = {
  // int (*cb)(SSL *s, int *al, void *arg);
  parameters: ["pointer", "pointer", "pointer"],
  result: "i32",
} as const;
const ALPN_SELECT_CB = {
  // int (*cb)(SSL *ssl, const unsigned char **out, unsigned char *outlen,
  //           const unsigned char *in, unsigned int inlen, void *arg);
  parameters: ["pointer", "pointer", "pointer", "pointer", "u32", "pointer"],
  result: "i32",
} as const;
const TICKET_KEY_CB = {
  // int (*cb)(SSL *s, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
  //           EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc);
  parameters: ["pointer", "pointer", "pointer", "pointer", "pointer", "i32"],
  result: "i32",
} as const;
const VERIFY_CB = {
  // int (*verify_callback)(int preverify_ok, X509_STORE_CTX *x509_ctx);
  parameters: ["i32", "pointer"],
  result: "i32",
} as const;

let acceptAny: Deno.UnsafeCallback<typeof VERIFY_CB> | undefined;

/**
 * The verify callback that accepts every certificate (the verdict is read
 * afterwards): one per thread, made on first use and kept for the thread's
 * life, since it captures nothing and contexts that use it may be cached.
 */
function acceptAnyCertificate(): Deno.UnsafeCallback<typeof VERIFY_CB> {
  acceptAny ??= new Deno.UnsafeCallback(VERIFY_CB, () => 1);
  return acceptAny;
}

/**
 * Encode ALPN protocol names as the wire list (each name after its length
 * byte). Throws a `RangeError` naming the call for an empty list, an empty
 * name or one over 255 bytes.
 *
 * @example
 * ```ts
 * import { encodeAlpn } from "./openssl_context.ts";
 * encodeAlpn("set ALPN", ["h2", "http/1.1"]); // Uint8Array [2, 104, 50, 8, ...]
 * ```
 */
export function encodeAlpn(call: string, protocols: readonly string[]): Uint8Array {
  if (!Array.isArray(protocols) || protocols.length === 0) {
    throw new RangeError(`Cannot ${call}: alpnProtocols must be a non-empty array of names`);
  }
  const parts: Uint8Array[] = [];
  for (const p of protocols) {
    if (typeof p !== "string") {
      throw new TypeError(`Cannot ${call}: ALPN protocol ${String(p)} is not a string`);
    }
    const bytes = new TextEncoder().encode(p);
    if (bytes.length === 0 || bytes.length > MAX_ALPN_NAME) {
      throw new RangeError(
        `Cannot ${call}: ALPN protocol ${JSON.stringify(p)} must be 1 to 255 bytes`,
      );
    }
    parts.push(Uint8Array.of(bytes.length), bytes);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * One `SSL_CTX`. Make it with {@linkcode SslContext.create}, configure it,
 * then make connections from it (`Ssl.create`); close it when done.
 *
 * @example
 * ```ts
 * import { SslContext } from "./openssl_context.ts";
 * using ctx = SslContext.create("client");
 * ctx.trustSystemStore();
 * ```
 */
export class SslContext implements Disposable {
  /** Which side it serves. */
  readonly role: SslRole;
  /**
   * Where errors thrown inside callbacks go (the handshake that ran them
   * fails). Default: `console.error`.
   */
  onCallbackError: (error: unknown) => void = (e) => console.error(e);
  #ctx: Deno.PointerObject | null;
  #refs = 1;
  #closed = false;
  #callbacks: Deno.UnsafeCallback[] = [];
  /** Contexts a server-name callback switched connections to: held until this one is freed. */
  #linked = new Set<SslContext>();
  /** The ALPN wire list the select callback answers from (kept alive and unmoved). */
  #alpn: Uint8Array | undefined;
  #logsSecrets = false;

  private constructor(role: SslRole, ctx: Deno.PointerObject) {
    this.role = role;
    this.#ctx = ctx;
  }

  /**
   * A new context with ffinet's policy; throws an `OpenSslError` naming
   * what failed.
   *
   * @example
   * ```ts
   * import { SslContext } from "./openssl_context.ts";
   * SslContext.create("server").close();
   * ```
   */
  static create(role: SslRole): SslContext {
    if (role !== "server" && role !== "client") {
      throw new TypeError(
        `Cannot create TLS context: role ${String(role)} is not server or client`,
      );
    }
    const { ssl } = openssl();
    clearOpenSslErrors();
    const method = role === "server" ? ssl.TLS_server_method() : ssl.TLS_client_method();
    const ctx = method === null ? null : ssl.SSL_CTX_new(method);
    if (ctx === null) throw new OpenSslError("create TLS context");
    const context = new SslContext(role, ctx);
    try {
      if (
        ctxSetMinProtoVersion(ctx, TLS_VERSION.TLS1_2) !== 1 ||
        ctxSetMaxProtoVersion(ctx, TLS_VERSION.TLS1_3) !== 1
      ) {
        throw new OpenSslError("set TLS versions");
      }
      ssl.SSL_CTX_set_options(ctx, SSL_OP.NO_COMPRESSION | SSL_OP.NO_RENEGOTIATION);
      if (ssl.SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) !== 1) {
        throw new OpenSslError("set cipher list");
      }
      ctxSetMode(
        ctx,
        SSL_MODE.RELEASE_BUFFERS | SSL_MODE.ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE.NO_AUTO_CHAIN,
      );
      if (role === "server") {
        // One TLS 1.3 ticket per handshake, not OpenSSL's two: each costs a session
        // encryption, and a client resuming one connection needs one.
        if (ssl.SSL_CTX_set_num_tickets(ctx, 1n) !== 1) throw new OpenSslError("set ticket count");
        const sid = SESSION_ID_CONTEXT;
        if (ssl.SSL_CTX_set_session_id_context(ctx, sid, sid.byteLength) !== 1) {
          throw new OpenSslError("set session id context");
        }
      }
    } catch (e) {
      context.close();
      throw e;
    }
    return context;
  }

  /** The `SSL_CTX *` (for calls inside ffi/); throws once freed. */
  get pointer(): Deno.PointerObject {
    if (this.#ctx === null) {
      throw new Deno.errors.BadResource("Cannot use TLS context: it was freed");
    }
    return this.#ctx;
  }

  /**
   * Keep the TLS 1.3 application traffic secrets of this server context's
   * handshakes for `takeTrafficSecrets` (through OpenSSL's key-log
   * callback), for a record layer that leaves OpenSSL after the handshake.
   * OpenSSL then formats every secret of every handshake as text, so only a
   * context whose connections leave OpenSSL should log them.
   *
   * @example
   * ```ts
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("server");
   * ctx.logTrafficSecrets();
   * ```
   */
  logTrafficSecrets(): void {
    if (this.role !== "server") {
      throw new TypeError("Cannot log traffic secrets: not a server context");
    }
    openssl().ssl.SSL_CTX_set_keylog_callback(this.pointer, keyLogCallback());
    this.#logsSecrets = true;
  }

  /** Whether {@linkcode SslContext.logTrafficSecrets} has run on this context. */
  get logsTrafficSecrets(): boolean {
    return this.#logsSecrets;
  }

  /** Whether {@linkcode SslContext.close} has run (connections may still use it). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The protocol versions allowed, as `TLS_VERSION` numbers (`[0x0303, 0x0304]`). */
  get protocolVersions(): [min: number, max: number] {
    const ctx = this.pointer;
    return [ctxGetMinProtoVersion(ctx), ctxGetMaxProtoVersion(ctx)];
  }

  /** The `SSL_OP_*` bits set (see `SSL_OP` in `openssl.ts`). */
  get options(): bigint {
    return BigInt(openssl().ssl.SSL_CTX_get_options(this.pointer));
  }

  /** OpenSSL's security level (the default: 1 or 2, as the system configures it). */
  get securityLevel(): number {
    return openssl().ssl.SSL_CTX_get_security_level(this.pointer);
  }

  /**
   * Serve `chain[0]` with the rest of `chain` as its intermediates, signed
   * by `key`. Throws an `OpenSslError` when the key does not match the
   * certificate ("… key values mismatch"). The context takes its own
   * references: free `chain` and `key` afterwards.
   *
   * @example
   * ```ts
   * import { SslContext } from "./openssl_context.ts";
   * import { parseCertificates, parsePrivateKey } from "./openssl_x509.ts";
   * using ctx = SslContext.create("server");
   * const chain = parseCertificates(Deno.readTextFileSync("cert.pem"));
   * using key = parsePrivateKey(Deno.readTextFileSync("key.pem"));
   * ctx.useCertificate(chain, key);
   * chain.forEach((c) => c.free());
   * ```
   */
  useCertificate(chain: readonly X509Certificate[], key: PrivateKey): void {
    const { ssl, crypto } = openssl();
    const ctx = this.pointer;
    if (chain.length === 0) throw new OpenSslError("use certificate", [], "the chain is empty");
    clearOpenSslErrors();
    if (ssl.SSL_CTX_use_certificate(ctx, chain[0]!.pointer) !== 1) {
      throw new OpenSslError("use certificate");
    }
    for (const c of chain.slice(1)) {
      const x = c.pointer;
      crypto.X509_up_ref(x); // add0 takes this reference
      if (ctxAdd0ChainCert(ctx, x) !== 1) {
        crypto.X509_free(x);
        throw new OpenSslError("add intermediate certificate");
      }
    }
    if (ssl.SSL_CTX_use_PrivateKey(ctx, key.pointer) !== 1) {
      throw new OpenSslError("use key", undefined, "the key does not match the certificate");
    }
    if (ssl.SSL_CTX_check_private_key(ctx) !== 1) {
      throw new OpenSslError("use key", undefined, "the key does not match the certificate");
    }
  }

  /**
   * Trust `certs` as certificate authorities when verifying the peer (in
   * addition to any already trusted).
   *
   * @example
   * ```ts
   * import { SslContext } from "./openssl_context.ts";
   * import { parseCertificates } from "./openssl_x509.ts";
   * using ctx = SslContext.create("client");
   * const cas = parseCertificates(Deno.readTextFileSync("ca.pem"));
   * ctx.trust(cas);
   * cas.forEach((c) => c.free());
   * ```
   */
  trust(certs: readonly X509Certificate[]): void {
    const { ssl, crypto } = openssl();
    const store = ssl.SSL_CTX_get_cert_store(this.pointer);
    if (store === null) throw new OpenSslError("trust certificates", [], "no certificate store");
    clearOpenSslErrors();
    for (const c of certs) {
      if (crypto.X509_STORE_add_cert(store, c.pointer) !== 1) {
        const errors = takeOpenSslErrors();
        // The same CA given twice is not an error.
        if (errors.every((e) => e.includes("cert already in hash table"))) continue;
        throw new OpenSslError("trust certificates", errors);
      }
    }
  }

  /**
   * Trust the system's certificate authorities (OpenSSL's default paths:
   * `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's bundle).
   *
   * @example
   * ```ts
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("client");
   * ctx.trustSystemStore();
   * ```
   */
  trustSystemStore(): void {
    clearOpenSslErrors();
    if (openssl().ssl.SSL_CTX_set_default_verify_paths(this.pointer) !== 1) {
      throw new OpenSslError("load the system CA store");
    }
  }

  /**
   * Verify the peer's certificate. `request`: ask for it (servers; clients
   * always get one). `require`: fail the handshake when it is missing or
   * does not verify; otherwise the handshake goes on and the result is
   * read afterwards (`Ssl.verifyError`).
   *
   * @example
   * ```ts
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("server");
   * ctx.verifyPeer({ request: true, require: false });
   * ```
   */
  verifyPeer(options: { request: boolean; require: boolean }): void {
    const { ssl } = openssl();
    const ctx = this.pointer;
    if (!options.request) {
      ssl.SSL_CTX_set_verify(ctx, SSL_VERIFY.NONE, null);
      return;
    }
    if (options.require) {
      const mode = SSL_VERIFY.PEER | (this.role === "server" ? SSL_VERIFY.FAIL_IF_NO_PEER_CERT : 0);
      ssl.SSL_CTX_set_verify(ctx, mode, null);
      return;
    }
    // Keep going whatever the verdict: SSL_get_verify_result tells it afterwards.
    ssl.SSL_CTX_set_verify(ctx, SSL_VERIFY.PEER, acceptAnyCertificate().pointer);
  }

  /**
   * Servers: choose the application protocol from the client's offer, in
   * the order of `protocols` (server preference). A client that offers ALPN
   * but none of these gets a fatal `no_application_protocol` alert; a
   * client that offers none is served without ALPN.
   *
   * @example
   * ```ts
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("server");
   * ctx.selectAlpn(["h2", "http/1.1"]);
   * ```
   */
  selectAlpn(protocols: readonly string[]): void {
    const { ssl } = openssl();
    const wire = encodeAlpn("set ALPN protocols", protocols);
    void wire.buffer; // off V8's movable heap: OpenSSL copies the choice after the callback
    this.#alpn = wire;
    const wireLength = wire.byteLength;
    const select = this.#callback(
      ALPN_SELECT_CB,
      (_s, out, outlen, inp, inlen) => {
        if (out === null || outlen === null || inp === null) return SSL_TLSEXT_ERR.ALERT_FATAL;
        const r = ssl.SSL_select_next_proto(out, outlen, wire, wireLength, inp, inlen);
        return r === OPENSSL_NPN.NEGOTIATED ? SSL_TLSEXT_ERR.OK : SSL_TLSEXT_ERR.ALERT_FATAL;
      },
      SSL_TLSEXT_ERR.ALERT_FATAL,
    );
    ssl.SSL_CTX_set_alpn_select_cb(this.pointer, select.pointer, null);
  }

  /**
   * Servers: on every ClientHello, `choose(serverName)` picks the context
   * (certificate) to continue with; `undefined` or this context keeps this
   * one. A context it returns is held until this one is freed. A throwing
   * `choose` fails the handshake with a fatal alert.
   *
   * @example
   * ```ts
   * import { SslContext } from "./openssl_context.ts";
   * using main = SslContext.create("server");
   * using other = SslContext.create("server");
   * main.onServerName((name) => name === "b.example" ? other : undefined);
   * ```
   */
  onServerName(choose: (serverName: string | undefined) => SslContext | undefined): void {
    const { ssl } = openssl();
    const cb = this.#callback(
      SERVERNAME_CB,
      (s) => {
        if (s === null) return SSL_TLSEXT_ERR.ALERT_FATAL;
        const name = readCString(ssl.SSL_get_servername(s, TLSEXT_NAMETYPE_HOST_NAME));
        const chosen = choose(name);
        if (chosen === undefined || chosen === this) return SSL_TLSEXT_ERR.OK;
        if (!(chosen instanceof SslContext) || chosen.role !== "server") {
          throw new TypeError("Cannot choose a certificate: the choice is not a server SslContext");
        }
        if (!this.#linked.has(chosen)) {
          chosen.retain();
          this.#linked.add(chosen);
        }
        if (ssl.SSL_set_SSL_CTX(s, chosen.pointer) === null) {
          throw new OpenSslError("switch certificate for server name");
        }
        return SSL_TLSEXT_ERR.OK;
      },
      SSL_TLSEXT_ERR.ALERT_FATAL,
    );
    if (ctxSetServernameCallback(this.pointer, cb.pointer) !== 1) {
      throw new OpenSslError("set server name callback");
    }
  }

  /**
   * Servers: encrypt and decrypt session tickets with the keys of `ring`
   * (shared with other contexts, threads or processes given the same key
   * material) instead of this context's own random key. A failure inside
   * answers "no ticket" (a full handshake), never a resumption.
   *
   * @example
   * ```ts
   * import { SslContext } from "./openssl_context.ts";
   * import { TicketKeyring } from "./openssl_tickets.ts";
   * using ctx = SslContext.create("server");
   * const ring = new TicketKeyring();
   * ctx.useTicketKeys(ring);
   * ring.rotate(); // later, on a schedule
   * ```
   */
  useTicketKeys(ring: TicketKeyring): void {
    if (!(ring instanceof TicketKeyring)) {
      throw new TypeError("Cannot set ticket keys: ring is not a TicketKeyring");
    }
    const cb = this.#callback(
      TICKET_KEY_CB,
      (_s, name, iv, cipherCtx, macCtx, enc) => {
        if (name === null || iv === null || cipherCtx === null || macCtx === null) return 0;
        return enc === 1
          ? ring.encrypt(name, iv, cipherCtx, macCtx)
          : ring.decrypt(name, iv, cipherCtx, macCtx);
      },
      0,
    );
    if (openssl().ssl.SSL_CTX_set_tlsext_ticket_key_evp_cb(this.pointer, cb.pointer) !== 1) {
      throw new OpenSslError("set ticket key callback");
    }
  }

  /** An UnsafeCallback that never throws: errors go to `onCallbackError`, `failed` is returned. */
  #callback<D extends Deno.UnsafeCallbackDefinition>(
    definition: D,
    fn: Deno.UnsafeCallbackFunction<D["parameters"], D["result"]>,
    failed: number,
  ): Deno.UnsafeCallback<D> {
    const guarded = ((...args: unknown[]) => {
      try {
        return (fn as (...a: unknown[]) => number)(...args);
      } catch (error) {
        takeOpenSslErrors();
        try {
          this.onCallbackError(error);
        } catch { /* the sink failed too: the handshake still fails */ }
        return failed;
      }
    }) as unknown as Deno.UnsafeCallbackFunction<D["parameters"], D["result"]>;
    const cb = new Deno.UnsafeCallback(definition, guarded);
    this.#callbacks.push(cb as unknown as Deno.UnsafeCallback);
    return cb;
  }

  /** Take a reference (each `Ssl` made from this context holds one). */
  retain(): void {
    if (this.#ctx === null) {
      throw new Deno.errors.BadResource("Cannot use TLS context: it was freed");
    }
    this.#refs++;
  }

  /** Drop a reference; the last one frees the `SSL_CTX` and closes the callbacks. */
  release(): void {
    if (this.#refs <= 0) return;
    if (--this.#refs > 0) return;
    const ctx = this.#ctx;
    this.#ctx = null;
    if (ctx !== null) openssl().ssl.SSL_CTX_free(ctx);
    for (const cb of this.#callbacks) cb.close();
    this.#callbacks = [];
    this.#alpn = undefined;
    for (const other of this.#linked) other.release();
    this.#linked.clear();
  }

  /**
   * Stop using this context: it is freed once the last connection made from
   * it is freed (open connections keep working). Idempotent.
   *
   * @example
   * ```ts
   * import { SslContext } from "./openssl_context.ts";
   * SslContext.create("server").close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.release();
  }

  /** Close (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
