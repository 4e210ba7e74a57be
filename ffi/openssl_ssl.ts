/**
 * `Ssl`: one TLS connection's `SSL *`, talking to the network through a
 * pair of memory BIOs. Ciphertext the socket received goes in with
 * {@linkcode Ssl.feed}; ciphertext to send comes out with
 * {@linkcode Ssl.takeOutput}; the caller keeps its own `read`/`sendmsg`
 * and event loop. Nothing here blocks: a step that needs more bytes from the
 * peer says so and returns.
 *
 * Every call that takes a buffer checks the length against the view
 * (`RangeError` naming the call) with the length read once by the built-in
 * getter. Every failure takes OpenSSL's error queue into the thrown
 * `OpenSslError`, so the queue is empty again for the next connection on
 * this thread.
 *
 * Free with {@linkcode Ssl.free} after {@linkcode Ssl.shutdown}: a session
 * freed without a shutdown is not resumable.
 *
 * @module
 */
import {
  bioReset,
  bioSetMemEofReturn,
  openssl,
  SSL_ERROR,
  sslSetTlsextHostName,
  TLSEXT_NAMETYPE_HOST_NAME,
  X509_V_OK,
} from "./openssl.ts";
import {
  bioPending,
  bioRead,
  bioWrite,
  checkedLength,
  cString,
  newMemoryBio,
  readCString,
  viewLength,
} from "./openssl_bio.ts";
import { encodeAlpn, type SslContext } from "./openssl_context.ts";
import { OpenSslError, takeOpenSslErrors } from "./openssl_error.ts";
import { X509Certificate } from "./openssl_x509.ts";
import { parseIPv4, parseIPv6 } from "./inet.ts";

/** What {@linkcode Ssl.handshake} reports. */
export type HandshakeStep = "done" | "want-read";

/** {@linkcode Ssl.read}: the peer sent close_notify (no more data will come). */
export const SSL_READ_CLOSED = -1;
/** `SSL_SENT_SHUTDOWN`, `SSL_RECEIVED_SHUTDOWN` (`SSL_set_shutdown` bits). */
const SSL_SENT_SHUTDOWN = 1;
const SSL_RECEIVED_SHUTDOWN = 2;

const alpnData = new BigUint64Array(1);
const alpnLength = new Uint32Array(1);
/** The longest ALPN protocol name (one length byte on the wire). */
const ALPN_MAX = 255;
/** The chosen ALPN name is copied here (`len` <= 255 checked first), then decoded. */
const alpnName = new Uint8Array(ALPN_MAX);
const alpnDecoder = new TextDecoder();

/**
 * A TLS connection over memory BIOs.
 *
 * @example A client and a server in one thread, records passed by hand
 * ```ts
 * import { Ssl } from "./openssl_ssl.ts";
 * import { SslContext } from "./openssl_context.ts";
 * using ctx = SslContext.create("client");
 * const client = Ssl.create(ctx);
 * client.handshake(); // "want-read": the ClientHello is waiting in takeOutput()
 * const hello = new Uint8Array(client.pendingOutput);
 * client.takeOutput(hello);
 * client.free();
 * ```
 */
export class Ssl implements Disposable {
  /** The context it was made from (it holds a reference). */
  readonly context: SslContext;
  #ssl: Deno.PointerObject | null;
  #rbio: Deno.PointerObject;
  #wbio: Deno.PointerObject;
  /** Where {@linkcode Ssl.free} gives the `SSL` back for another connection, if anywhere. */
  readonly #pool: SslPool | undefined;
  /** The handshake completed (only such an `SSL` goes back to a pool). */
  #done = false;
  #recycled = false;

  private constructor(
    context: SslContext,
    ssl: Deno.PointerObject,
    rbio: Deno.PointerObject,
    wbio: Deno.PointerObject,
    pool: SslPool | undefined,
  ) {
    this.context = context;
    this.#ssl = ssl;
    this.#rbio = rbio;
    this.#wbio = wbio;
    this.#pool = pool;
  }

  /**
   * A new connection in the context's role (accept state for a server,
   * connect state for a client). Throws an `OpenSslError`.
   *
   * @example
   * ```ts
   * import { Ssl } from "./openssl_ssl.ts";
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("server");
   * Ssl.create(ctx).free();
   * ```
   */
  static create(context: SslContext): Ssl {
    return Ssl.#make(context, undefined);
  }

  /**
   * A server connection from `pool`: a cleared `SSL` a finished connection
   * gave back, else a new one. {@linkcode Ssl.free} gives it back.
   *
   * @example
   * ```ts
   * import { Ssl, SslPool } from "./openssl_ssl.ts";
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("server");
   * using pool = new SslPool(ctx);
   * Ssl.fromPool(pool).free();
   * ```
   */
  static fromPool(pool: SslPool): Ssl {
    if (!(pool instanceof SslPool)) {
      throw new TypeError("Cannot create TLS connection: pool is not an SslPool");
    }
    const context = pool.context;
    const kept = poolTake(pool);
    if (kept === undefined) return Ssl.#make(context, pool);
    context.retain();
    const ssl = new Ssl(context, kept.ssl, kept.rbio, kept.wbio, pool);
    ssl.#recycled = true;
    return ssl;
  }

  static #make(context: SslContext, pool: SslPool | undefined): Ssl {
    const { ssl: lib, crypto } = openssl();
    const ctx = context.pointer;
    const ssl = lib.SSL_new(ctx);
    if (ssl === null) throw new OpenSslError("create TLS connection");
    let rbio: Deno.PointerObject | null = null;
    let wbio: Deno.PointerObject | null = null;
    try {
      rbio = newMemoryBio("create TLS connection");
      wbio = newMemoryBio("create TLS connection");
    } catch (e) {
      if (rbio !== null) crypto.BIO_free(rbio);
      lib.SSL_free(ssl);
      throw e;
    }
    // An empty input BIO means "wait for more", never EOF.
    bioSetMemEofReturn(rbio, -1);
    bioSetMemEofReturn(wbio, -1);
    lib.SSL_set_bio(ssl, rbio, wbio); // the SSL owns both BIOs from here
    if (context.role === "server") lib.SSL_set_accept_state(ssl);
    else lib.SSL_set_connect_state(ssl);
    context.retain();
    return new Ssl(context, ssl, rbio, wbio, pool);
  }

  /** Throw `BadResource` once freed (the BIOs went with the `SSL`). */
  #checkOpen(): void {
    if (this.#ssl === null) {
      throw new Deno.errors.BadResource("Cannot use TLS connection: it was freed");
    }
  }

  get #pointer(): Deno.PointerObject {
    if (this.#ssl === null) {
      throw new Deno.errors.BadResource("Cannot use TLS connection: it was freed");
    }
    return this.#ssl;
  }

  /** Whether it runs on an `SSL` a finished connection gave back to its pool (cleared). */
  get recycled(): boolean {
    return this.#recycled;
  }

  /** Whether {@linkcode Ssl.free} has run. */
  get freed(): boolean {
    return this.#ssl === null;
  }

  /**
   * Clients: send `name` as SNI (skip it for IP addresses, as RFC 6066
   * asks).
   *
   * @example
   * ```ts
   * import { Ssl } from "./openssl_ssl.ts";
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("client");
   * using ssl = Ssl.create(ctx);
   * ssl.setServerName("example.com");
   * ```
   */
  setServerName(name: string): void {
    if (sslSetTlsextHostName(this.#pointer, cString("set server name", name)) !== 1) {
      throw new OpenSslError("set server name");
    }
  }

  /**
   * Clients: the certificate must name `host` (a DNS name, wildcards as
   * RFC 6125 allows, or an IP address matched against IP SANs).
   *
   * @example
   * ```ts
   * import { Ssl } from "./openssl_ssl.ts";
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("client");
   * using ssl = Ssl.create(ctx);
   * ssl.verifyHost("127.0.0.1");
   * ```
   */
  verifyHost(host: string): void {
    const { ssl, crypto } = openssl();
    const s = this.#pointer;
    const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
    if (parseIPv4(bare) !== null || parseIPv6(bare) !== null) {
      const param = ssl.SSL_get0_param(s);
      if (
        param === null ||
        crypto.X509_VERIFY_PARAM_set1_ip_asc(param, cString("verify host", bare)) !== 1
      ) {
        throw new OpenSslError("verify host", undefined, `${bare} is not an IP address`);
      }
      return;
    }
    if (ssl.SSL_set1_host(s, cString("verify host", host)) !== 1) {
      throw new OpenSslError("verify host", undefined, `${host} is not a host name`);
    }
  }

  /**
   * Clients: offer these application protocols (ALPN), in preference order.
   *
   * @example
   * ```ts
   * import { Ssl } from "./openssl_ssl.ts";
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("client");
   * using ssl = Ssl.create(ctx);
   * ssl.offerAlpn(["h2", "http/1.1"]);
   * ```
   */
  offerAlpn(protocols: readonly string[]): void {
    const wire = encodeAlpn("offer ALPN protocols", protocols);
    // 0 on success (unlike most of OpenSSL).
    if (openssl().ssl.SSL_set_alpn_protos(this.#pointer, wire, wire.byteLength) !== 0) {
      throw new OpenSslError("offer ALPN protocols");
    }
  }

  /**
   * Hand `len` bytes (default all) of ciphertext from the peer to OpenSSL
   * (copied). Returns how many were taken (all of them).
   *
   * @example
   * ```ts
   * import { Ssl } from "./openssl_ssl.ts";
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("server");
   * using ssl = Ssl.create(ctx);
   * ssl.feed(new Uint8Array([0x16, 3, 1]), 3); // 3
   * ```
   */
  feed(data: Uint8Array, len?: number): number {
    this.#checkOpen();
    const n = checkedLength("feed TLS records", len, viewLength("feed TLS records", data));
    if (n === 0) return 0;
    const r = bioWrite(this.#rbio, data, n);
    if (r !== n) throw new OpenSslError("feed TLS records");
    return r;
  }

  /**
   * Ciphertext fed but not yet taken by OpenSSL. After a
   * {@linkcode Ssl.read} that returned data, 0 means the next `read` would
   * only ask for more (OpenSSL reads a record at a time and never ahead), so
   * the caller can skip that call.
   */
  get inputPending(): number {
    this.#checkOpen();
    return bioPending(this.#rbio);
  }

  /**
   * Give back the memory the two memory BIOs kept: each keeps the size of
   * the most it ever held (a handshake flight, a burst of records), so an
   * idle connection swaps them for empty ones. Only when both are empty
   * (nothing fed is waiting, nothing produced is unsent); returns whether
   * it did.
   *
   * @example
   * ```ts
   * import { Ssl } from "./openssl_ssl.ts";
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("server");
   * using ssl = Ssl.create(ctx);
   * ssl.releaseBuffers(); // true: both BIOs were empty
   * ```
   */
  releaseBuffers(): boolean {
    const s = this.#pointer;
    if (bioPending(this.#rbio) !== 0 || bioPending(this.#wbio) !== 0) return false;
    const { ssl: lib, crypto } = openssl();
    const rbio = newMemoryBio("release TLS buffers");
    let wbio;
    try {
      wbio = newMemoryBio("release TLS buffers");
    } catch (e) {
      crypto.BIO_free(rbio);
      throw e;
    }
    bioSetMemEofReturn(rbio, -1);
    bioSetMemEofReturn(wbio, -1);
    lib.SSL_set0_rbio(s, rbio); // frees the old input BIO
    this.#rbio = rbio;
    lib.SSL_set0_wbio(s, wbio); // frees the old output BIO
    this.#wbio = wbio;
    return true;
  }

  /** Ciphertext waiting to be sent to the peer. */
  get pendingOutput(): number {
    this.#checkOpen();
    return bioPending(this.#wbio);
  }

  /**
   * Move up to `len` bytes (default `buf`'s length) of ciphertext to send
   * into `buf`; returns how many (0 when none is waiting).
   *
   * @example
   * ```ts
   * import { Ssl } from "./openssl_ssl.ts";
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("client");
   * using ssl = Ssl.create(ctx);
   * ssl.handshake();
   * const out = new Uint8Array(16 * 1024);
   * ssl.takeOutput(out); // the ClientHello's length
   * ```
   */
  takeOutput(buf: Uint8Array, len?: number): number {
    this.#checkOpen();
    const n = bioRead(this.#wbio, buf, len);
    return n > 0 ? n : 0;
  }

  /** An `OpenSslError` for a failed step, with the verify verdict when that is why. */
  #failure(action: string, r: number, code: number): OpenSslError {
    const errors = takeOpenSslErrors();
    const verify = this.verifyError;
    if (verify !== undefined && errors.some((e) => e.includes("certificate verify failed"))) {
      return new OpenSslError(action, errors, `certificate verify failed (${verify})`);
    }
    if (code === SSL_ERROR.SYSCALL && errors.length === 0) {
      return new OpenSslError(action, errors, `unexpected end of input (SSL_ERROR_SYSCALL, ${r})`);
    }
    return new OpenSslError(action, errors);
  }

  /**
   * Advance the handshake with the bytes fed so far: `"done"`, or
   * `"want-read"` (send what `takeOutput` holds, then feed the peer's
   * answer). Throws an `OpenSslError` when the handshake failed (send what
   * `takeOutput` holds first: it may be the alert that tells the peer why).
   *
   * @example
   * ```ts
   * import { Ssl } from "./openssl_ssl.ts";
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("client");
   * using ssl = Ssl.create(ctx);
   * ssl.handshake(); // "want-read"
   * ```
   */
  handshake(): HandshakeStep {
    const s = this.#pointer;
    const { ssl } = openssl();
    const r = ssl.SSL_do_handshake(s);
    if (r === 1) {
      this.#done = true;
      return "done";
    }
    const code = ssl.SSL_get_error(s, r);
    if (code === SSL_ERROR.WANT_READ || code === SSL_ERROR.WANT_WRITE) return "want-read";
    throw this.#failure("complete TLS handshake", r, code);
  }

  /**
   * Decrypt up to `len` bytes (default `buf`'s length) of application data
   * into `buf`: the count, 0 when more ciphertext is needed, or
   * {@linkcode SSL_READ_CLOSED} when the peer sent close_notify. Throws an
   * `OpenSslError` on a bad record.
   *
   * @example
   * ```ts
   * import { Ssl } from "./openssl_ssl.ts";
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("server");
   * using ssl = Ssl.create(ctx);
   * ssl.read(new Uint8Array(16)); // 0: nothing yet
   * ```
   */
  read(buf: Uint8Array, len?: number): number {
    const s = this.#pointer;
    const n = checkedLength("read TLS data", len, viewLength("read TLS data", buf));
    if (n === 0) return 0;
    const { ssl } = openssl();
    const r = ssl.SSL_read(s, buf, n);
    if (r > 0) return r;
    const code = ssl.SSL_get_error(s, r);
    if (code === SSL_ERROR.WANT_READ || code === SSL_ERROR.WANT_WRITE) return 0;
    if (code === SSL_ERROR.ZERO_RETURN) return SSL_READ_CLOSED;
    throw this.#failure("read TLS data", r, code);
  }

  /**
   * Encrypt `len` bytes (default all) of `data` into records waiting in
   * `takeOutput`: the count (all of them: the output BIO grows), or 0 when
   * the handshake must progress first. Throws an `OpenSslError`.
   *
   * @example
   * ```ts
   * import { Ssl } from "./openssl_ssl.ts";
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("client");
   * using ssl = Ssl.create(ctx);
   * ssl.write(new TextEncoder().encode("hi")); // 0 before the handshake
   * ```
   */
  write(data: Uint8Array, len?: number): number {
    const s = this.#pointer;
    const n = checkedLength("write TLS data", len, viewLength("write TLS data", data));
    if (n === 0) return 0;
    const { ssl } = openssl();
    const r = ssl.SSL_write(s, data, n);
    if (r > 0) return r;
    const code = ssl.SSL_get_error(s, r);
    if (code === SSL_ERROR.WANT_READ || code === SSL_ERROR.WANT_WRITE) return 0;
    throw this.#failure("write TLS data", r, code);
  }

  /**
   * Queue a close_notify alert (sent through `takeOutput`) so that the
   * session stays resumable and the peer knows the data is complete. Safe
   * to call at any point; errors are dropped (the connection is going away).
   *
   * @example
   * ```ts
   * import { Ssl } from "./openssl_ssl.ts";
   * import { SslContext } from "./openssl_context.ts";
   * using ctx = SslContext.create("client");
   * using ssl = Ssl.create(ctx);
   * ssl.shutdown();
   * ```
   */
  shutdown(): void {
    const s = this.#pointer;
    const { ssl } = openssl();
    if (ssl.SSL_is_init_finished(s) !== 1) return; // nothing to protect before the handshake
    if (ssl.SSL_shutdown(s) < 0) takeOpenSslErrors();
  }

  /** The negotiated protocol ("TLSv1.3", "TLSv1.2"). */
  get protocol(): string {
    return readCString(openssl().ssl.SSL_get_version(this.#pointer)) ?? "";
  }

  /** The negotiated cipher suite, OpenSSL's name ("TLS_AES_256_GCM_SHA384"). */
  get cipher(): string | undefined {
    const { ssl } = openssl();
    const c = ssl.SSL_get_current_cipher(this.#pointer);
    return c === null ? undefined : readCString(ssl.SSL_CIPHER_get_name(c));
  }

  /** The protocol ALPN chose, if any. */
  get alpnProtocol(): string | undefined {
    const { ssl } = openssl();
    alpnData[0] = 0n;
    alpnLength[0] = 0;
    ssl.SSL_get0_alpn_selected(this.#pointer, alpnData, alpnLength);
    const len = alpnLength[0]!;
    const p = Deno.UnsafePointer.create(alpnData[0]!);
    if (p === null || len === 0 || len > ALPN_MAX) return undefined;
    const name = alpnName.subarray(0, len);
    Deno.UnsafePointerView.copyInto(p, name);
    return alpnDecoder.decode(name);
  }

  /** The server name (SNI) the client sent, if any. */
  get serverName(): string | undefined {
    const { ssl } = openssl();
    return readCString(ssl.SSL_get_servername(this.#pointer, TLSEXT_NAMETYPE_HOST_NAME));
  }

  /** Whether this handshake resumed an earlier session. */
  get sessionReused(): boolean {
    return openssl().ssl.SSL_session_reused(this.#pointer) === 1;
  }

  /** Whether the handshake has completed. */
  get handshakeDone(): boolean {
    return openssl().ssl.SSL_is_init_finished(this.#pointer) === 1;
  }

  /**
   * Why the peer's certificate did not verify ("self-signed certificate"),
   * or undefined when it did (or none was checked).
   */
  get verifyError(): string | undefined {
    const { ssl, crypto } = openssl();
    const code = ssl.SSL_get_verify_result(this.#pointer);
    if (Number(code) === X509_V_OK) return undefined;
    return readCString(crypto.X509_verify_cert_error_string(code)) ?? `verify error ${code}`;
  }

  /** The peer's certificate (free it), or undefined when it sent none. */
  peerCertificate(): X509Certificate | undefined {
    const x = openssl().ssl.SSL_get1_peer_certificate(this.#pointer);
    return x === null ? undefined : new X509Certificate(x);
  }

  /** The ClientHello's random (32 bytes): names the connection in OpenSSL's key log. */
  get clientRandom(): Uint8Array {
    const out = new Uint8Array(32);
    const n = Number(openssl().ssl.SSL_get_client_random(this.#pointer, out, 32n));
    return out.subarray(0, Math.min(n, 32));
  }

  /** Whether OpenSSL holds bytes it has read and not returned (plaintext or part of a record). */
  get hasPending(): boolean {
    return openssl().ssl.SSL_has_pending(this.#pointer) === 1;
  }

  /**
   * Free after the record layer moved out of OpenSSL (TLS 1.3): the
   * connection is marked shut down both ways first, so that freeing it
   * does not drop its session as an unclean end would.
   */
  freeDetached(): void {
    const s = this.#ssl;
    if (s === null) return;
    openssl().ssl.SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    this.free();
  }

  /**
   * Free the `SSL` and its BIOs and drop the context reference
   * (idempotent). One taken from an {@linkcode SslPool} whose handshake
   * completed goes back to the pool, cleared, while the pool has room.
   */
  free(): void {
    const s = this.#ssl;
    if (s === null) return;
    this.#ssl = null;
    const pool = this.#pool;
    if (pool === undefined || !this.#done || !poolGive(pool, s, this.#rbio, this.#wbio)) {
      openssl().ssl.SSL_free(s);
    }
    this.context.release();
  }

  /** Free (for `using`). */
  [Symbol.dispose](): void {
    this.free();
  }
}

/** How many cleared `SSL`s a pool keeps by default. */
const POOL_SIZE = 16;
/** The most a pool may be asked to keep. */
const POOL_SIZE_MAX = 1024;

/** A cleared `SSL` and the memory BIOs it owns. */
interface KeptSsl {
  ssl: Deno.PointerObject;
  rbio: Deno.PointerObject;
  wbio: Deno.PointerObject;
}

/** {@linkcode SslPool}'s own steps, for {@linkcode Ssl} (set in the class's static block). */
let poolTake: (pool: SslPool) => KeptSsl | undefined;
let poolGive: (
  pool: SslPool,
  ssl: Deno.PointerObject,
  rbio: Deno.PointerObject,
  wbio: Deno.PointerObject,
) => boolean;

/**
 * Server `SSL`s kept for the next connection of one context: `SSL_new`
 * copies the context's certificates, parameters and lists into every new
 * connection, and `SSL_free` frees them again; an `SSL` whose handshake
 * completed is instead `SSL_clear`ed (state, keys, session flags and the
 * peer's extensions are reset; each ClientHello sets its own server name,
 * ALPN choice and session) and its memory BIOs emptied.
 *
 * Only an `SSL` still on the pool's context is kept (a server-name
 * callback that moved it to another certificate's context makes it
 * freed). A context that asks for client certificates should get a pool of
 * size 0: `SSL_clear` leaves the last verification result in place, and a
 * resumed TLS 1.3 session does not set it again.
 *
 * The pool holds a reference to its context; {@linkcode SslPool.close}
 * frees what it keeps and drops it.
 *
 * @example
 * ```ts
 * import { Ssl, SslPool } from "./openssl_ssl.ts";
 * import { SslContext } from "./openssl_context.ts";
 * using ctx = SslContext.create("server");
 * using pool = new SslPool(ctx);
 * const ssl = Ssl.fromPool(pool); // a new SSL: the pool is empty
 * ssl.free(); // freed: its handshake never completed
 * console.log(pool.idle, pool.reused); // 0 0
 * ```
 */
export class SslPool implements Disposable {
  /** The context every `SSL` of the pool belongs to. */
  readonly context: SslContext;
  /** How many cleared `SSL`s it keeps at most. */
  readonly size: number;
  /** Connections that were given a kept `SSL` rather than a new one. */
  reused = 0;
  #kept: KeptSsl[] = [];
  #closed = false;

  /**
   * A pool of up to `size` (default 16; 0 keeps none) `SSL`s of the server
   * context `context` (it takes a reference).
   */
  constructor(context: SslContext, size: number = POOL_SIZE) {
    if (context?.role !== "server") {
      throw new TypeError("Cannot create TLS connection pool: context is not a server SslContext");
    }
    if (!Number.isInteger(size) || size < 0 || size > POOL_SIZE_MAX) {
      throw new RangeError(
        `Cannot create TLS connection pool: size ${size} is not an integer from 0 to ${POOL_SIZE_MAX}`,
      );
    }
    context.retain();
    this.context = context;
    this.size = size;
  }

  /** Cleared `SSL`s waiting for a connection. */
  get idle(): number {
    return this.#kept.length;
  }

  /** Whether {@linkcode SslPool.close} has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Clear `ssl` and keep it, unless the pool is full, closed, or it moved to another context. */
  #give(ssl: Deno.PointerObject, rbio: Deno.PointerObject, wbio: Deno.PointerObject): boolean {
    if (this.#closed || this.#kept.length >= this.size) return false;
    const { ssl: lib } = openssl();
    if (!Deno.UnsafePointer.equals(lib.SSL_get_SSL_CTX(ssl), this.context.pointer)) return false;
    // Nothing of this connection may reach the next: unread records, unsent output.
    if (lib.SSL_clear(ssl) !== 1 || bioReset(rbio) !== 1 || bioReset(wbio) !== 1) {
      takeOpenSslErrors();
      return false;
    }
    this.#kept.push({ ssl, rbio, wbio });
    return true;
  }

  static {
    poolTake = (pool) => {
      const kept = pool.#closed ? undefined : pool.#kept.pop();
      if (kept !== undefined) pool.reused++;
      return kept;
    };
    poolGive = (pool, ssl, rbio, wbio) => pool.#give(ssl, rbio, wbio);
  }

  /** Free the kept `SSL`s and drop the context reference; `SSL`s given back later are freed. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const { ssl } = openssl();
    for (const kept of this.#kept) ssl.SSL_free(kept.ssl);
    this.#kept = [];
    this.context.release();
  }

  /** Close (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
