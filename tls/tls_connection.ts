/**
 * `TlsConnection`: TLS over a reactor {@linkcode Connection}, with the same
 * contract (`onData`, `write` with backpressure, `onDrain`, `end`, `close`,
 * `abort`, `onClose`, idle timeouts, PROXY-protocol info).
 *
 * The transport stays ffinet's own: ciphertext the `Connection` reads goes
 * into OpenSSL through a memory BIO, records OpenSSL produces come out of
 * another one and leave through the `Connection`'s `send`/`sendmsg` and its
 * output queue. OpenSSL never touches the socket.
 *
 * - The handshake is non-blocking and has its own timeout
 *   (`handshakeTimeoutMs`): a peer that trickles a ClientHello byte by byte
 *   (which keeps an idle timer happy) is reset when it runs out.
 * - `onData` receives decrypted bytes in a view valid only during the call.
 *   Bytes decrypted before `onData` is set stay inside OpenSSL, with
 *   reading paused, until it is.
 * - `write()` encrypts at once and hands the records to the `Connection`;
 *   it returns false once `highWaterMark` ciphertext bytes are queued, and
 *   `onDrain` follows. Writes before the handshake completes wait for it.
 * - `end()` sends close_notify and half-closes; `close()` sends
 *   close_notify, flushes and closes; `abort()` resets. OpenSSL's state is
 *   freed when the `Connection` closes, after the shutdown: a session
 *   freed without one could not be resumed.
 * - The peer's close_notify (or a TCP EOF) calls `onEnd`.
 * - TLS 1.3 server connections leave OpenSSL once its handshake is over
 *   (and its session tickets are written): the traffic secrets from its key
 *   log, the suite and the record counts move to ffinet's own record layer
 *   (`tls/_record.ts`, libcrypto's AEAD) and the `SSL` object is freed, as
 *   kernel TLS would take over. An idle connection then holds its keys and
 *   little else (its cipher contexts go back to a shared pool after a second
 *   without records). `info.recordLayer` tells which layer a connection
 *   uses. TLS 1.2 connections, and clients (which must read the server's
 *   session tickets for resumption), keep OpenSSL's.
 * - A record rejected after the handshake (a bad MAC, a malformed or
 *   oversized record) gets the fatal alert OpenSSL would send
 *   (`bad_record_mac`, `record_overflow`, `decode_error` …), then a close;
 *   `onClose` gets an `OpenSslError` with OpenSSL's text for that fault.
 * - A handler that throws closes the connection (reset) and its error goes
 *   where the `Connection`'s would (the listener's `onError`, else the
 *   reactor's).
 *
 * @module
 */
import { type Ssl, SSL_READ_CLOSED } from "../ffi/openssl_ssl.ts";
import { OpenSslError } from "../ffi/openssl_error.ts";
import { kernelTlsSupport } from "../ffi/ktls.ts";
import {
  forgetTrafficSecrets,
  isTls13CipherSuite,
  takeTrafficSecrets,
} from "../ffi/openssl_aead.ts";
import {
  countRecords,
  RecordError,
  recordLayerControl,
  RECORDS_CLOSED,
  Tls13Records,
} from "./_record.ts";
import { formatAddress, type SocketAddress } from "../ffi/sockaddr.ts";
import type { Socket } from "../ffi/socket.ts";
import type { Connection } from "../reactor/connection.ts";
import type { ProxyInfo } from "../reactor/proxy/protocol.ts";
import type { Reactor } from "../reactor/reactor.ts";
import type { Timer } from "../reactor/timer_queue.ts";

/** Plaintext delivered per `onData` call at most (one TLS record is 16 KiB). */
const PLAIN_BUFFER_SIZE = 64 * 1024;
/** Plaintext encrypted per `SSL_write`, so that the output BIO stays small. */
const WRITE_SLICE = 64 * 1024;
/** Ciphertext moved from OpenSSL to the socket per step. */
const CIPHER_BUFFER_SIZE = 64 * 1024;
/** Ciphertext fed to OpenSSL per step while reading flows: one full record and its header. */
const FEED_SLICE = 16 * 1024 + 512;
/** A feed or write this large grows a memory BIO enough to give the memory back after. */
const GROWN_BYTES = 4 * 1024;
const plainBuf = new Uint8Array(PLAIN_BUFFER_SIZE);
const cipherBuf = new Uint8Array(CIPHER_BUFFER_SIZE);

/** Where a TLS connection is in its life. */
export type TlsConnectionState = "handshaking" | "open" | "ending" | "closing" | "closed";

/** The peer's certificate, as `info` reports it. */
export interface TlsPeerCertificate {
  /** RFC 2253 subject ("CN=client,O=Example"). */
  subject: string;
  /** RFC 2253 issuer. */
  issuer: string;
  /** Start of validity as OpenSSL prints it ("Dec  7 08:00:00 2026 GMT"). */
  validFrom: string;
  /** End of validity. */
  validTo: string;
  /** The DER encoding. */
  raw: Uint8Array;
}

/** What the handshake negotiated. */
export interface TlsInfo {
  /** "TLSv1.3" or "TLSv1.2". */
  protocol: string;
  /** OpenSSL's name of the cipher suite ("TLS_AES_128_GCM_SHA256"). */
  cipher: string | undefined;
  /** The application protocol ALPN chose, if any. */
  alpnProtocol: string | undefined;
  /** The server name (SNI): the one the client sent (servers) or asked for (clients). */
  serverName: string | undefined;
  /** Whether the session was resumed (a ticket or session id). */
  sessionReused: boolean;
  /** The peer's certificate, when it sent one. */
  peerCertificate: TlsPeerCertificate | undefined;
  /** Whether the peer sent a certificate that verified. */
  authorized: boolean;
  /** Why it did not verify ("self-signed certificate"), or why there is none. */
  authorizationError: string | undefined;
  /**
   * Kernel TLS: whether the kernel has the `tls` ULP (`available`), and
   * whether this connection's sent (`tx`) and received (`rx`) records go
   * through it. `tx` and `rx` are false: records go through memory BIOs.
   */
  ktls: { available: boolean; tx: boolean; rx: boolean };
  /**
   * Who protects this connection's records after the handshake: `"ffinet"`
   * (TLS 1.3 server connections: the traffic keys left OpenSSL, whose
   * `SSL` object was freed) or `"openssl"` (TLS 1.2, clients).
   */
  recordLayer: "openssl" | "ffinet";
}

/** `ERR_LIB_SSL`, and `SSL_AD_REASON_OFFSET`: reasons 1000 + n are the alert n received from the peer. */
const ERR_LIB_SSL = 20;
const SSL_AD_REASON_OFFSET = 1000;

/** Whether OpenSSL's error text ("error:0A000410:SSL routines::…") reports an alert the peer sent. */
function isReceivedAlert(text: string): boolean {
  const m = /^error:([0-9A-Fa-f]{8}):/.exec(text);
  if (m === null) return false;
  const code = parseInt(m[1]!, 16);
  const reason = code & 0x7fffff;
  return code >>> 23 === ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET &&
    reason < SSL_AD_REASON_OFFSET + 256;
}

/** `info.ktls`, one frozen object per process (the kernel is asked once). */
let ktlsInfo: TlsInfo["ktls"] | undefined;
function kernelTls(): TlsInfo["ktls"] {
  return ktlsInfo ??= Object.freeze({
    available: kernelTlsSupport().available,
    tx: false,
    rx: false,
  });
}

/** What {@linkcode TlsConnection.onData} receives: a view valid only during the call. */
export type TlsDataHandler = (data: Uint8Array, conn: TlsConnection) => void;

/** How a TLS connection reports the end of its handshake (set by its listener or connect). */
export interface HandshakeHooks {
  /** The handshake completed. */
  secure(conn: TlsConnection): void;
  /** The handshake failed, timed out, or the connection closed before it completed. */
  failed(conn: TlsConnection, error: Error): void;
  /** A handler threw outside the transport's own dispatch (the connection was reset). */
  report(error: unknown, conn: TlsConnection): void;
  /**
   * After the handshake, the peer sent a record OpenSSL rejected (a bad
   * MAC, a malformed or oversized record). The fatal alert OpenSSL chose
   * has been sent and the connection is closing; `error` carries
   * OpenSSL's text.
   */
  badRecord?(conn: TlsConnection, error: OpenSslError): void;
}

/**
 * A TLS connection on a reactor. Listeners (`TlsListener`) and
 * `connectTls` make them; `onConnection` and `connectTls` hand them over
 * once the handshake has completed.
 *
 * @example An echo handler
 * ```ts
 * import { TlsListener } from "@ffinet/ffinet/tls";
 * import { Reactor } from "@ffinet/ffinet/reactor";
 * await using reactor = new Reactor();
 * using server = TlsListener.listen(reactor, {
 *   port: 0,
 *   tls: { cert: Deno.readTextFileSync("cert.pem"), key: Deno.readTextFileSync("key.pem") },
 * });
 * server.onConnection = (conn) => {
 *   conn.onData = (data) => {
 *     if (!conn.write(data)) conn.pause();
 *   };
 *   conn.onDrain = () => conn.resume();
 * };
 * ```
 */
export class TlsConnection implements Disposable {
  /** The TCP (or Unix) connection carrying the records. */
  readonly transport: Connection;
  /** Decrypted bytes delivered. */
  bytesRead = 0;
  /** Bytes given to `write()` and encrypted. */
  bytesWritten = 0;
  /** Called when the peer has finished sending (close_notify or EOF). */
  onEnd: ((conn: TlsConnection) => void) | undefined;
  /** Called when the output queue empties after `write()` returned false. */
  onDrain: ((conn: TlsConnection) => void) | undefined;
  /** Called once when the connection is closed, with the error that closed it, if any. */
  onClose: ((conn: TlsConnection, error?: Error) => void) | undefined;
  /** Anything the application wants to keep with the connection. */
  context: unknown;

  readonly #ssl: Ssl;
  readonly #hooks: HandshakeHooks;
  readonly #allowHalfOpen: boolean;
  readonly #highWaterMark: number;
  #state: TlsConnectionState = "handshaking";
  #onData: TlsDataHandler | undefined;
  #info: TlsInfo | undefined;
  #handshakeTimer: Timer | undefined;
  #readPaused = false;
  #readEnded = false;
  #needDrain = false;
  #drainScheduled = false;
  /** Plaintext decrypted before `onData` was set (a copy); reading is held meanwhile. */
  #early: Uint8Array | undefined;
  /** Plaintext written before the handshake completed. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** The error to report in `onClose` when the transport closes without one. */
  #error: Error | undefined;
  /**
   * OpenSSL may hold records not yet handed to the transport (set after
   * every call that can make some; cleared when the output BIO is emptied).
   */
  #outputPending = false;
  /** The memory BIOs held a flight or a burst: give their memory back when both are empty. */
  #grown = false;
  /** TLS 1.3 after the handshake: the record layer that replaced OpenSSL's (`#ssl` is freed). */
  #records: Tls13Records | undefined;
  /** The ciphertext OpenSSL's last handshake step left unread (the start of the application data). */
  #leftover: Uint8Array | undefined;

  /**
   * Run TLS over `transport` (which this object now drives: its handlers
   * are replaced) with `ssl` (which it frees when the transport closes).
   * Clients send their ClientHello at once.
   */
  constructor(
    transport: Connection,
    ssl: Ssl,
    options: {
      handshakeTimeoutMs: number;
      highWaterMark: number;
      allowHalfOpen: boolean;
      hooks: HandshakeHooks;
    },
  ) {
    this.transport = transport;
    this.#ssl = ssl;
    this.#hooks = options.hooks;
    this.#allowHalfOpen = options.allowHalfOpen;
    this.#highWaterMark = options.highWaterMark;
    transport.onData = (data) => this.#onCipher(data);
    transport.onEnd = () => this.#onTransportEnd();
    transport.onDrain = () => this.#onTransportDrain();
    transport.onClose = (_c, error) => this.#onTransportClose(error);
    this.#handshakeTimer = transport.reactor.setTimeout(() => {
      this.#handshakeTimer = undefined;
      if (this.#state !== "handshaking") return;
      this.abort(
        new Deno.errors.TimedOut(
          `Cannot complete TLS handshake: not done within ${options.handshakeTimeoutMs} ms (handshakeTimeoutMs)`,
        ),
      );
    }, options.handshakeTimeoutMs);
    if (ssl.context.role === "client") this.#advanceHandshake();
  }

  /** The socket (owned by the transport). */
  get socket(): Socket {
    return this.transport.socket;
  }

  /** The reactor driving it. */
  get reactor(): Reactor {
    return this.transport.reactor;
  }

  /** The fd. */
  get fd(): number {
    return this.transport.fd;
  }

  /** The PROXY protocol header the connection arrived with, if any. */
  get proxyInfo(): ProxyInfo | undefined {
    return this.transport.proxyInfo;
  }

  /** `"handshaking"`, `"open"`, `"ending"`, `"closing"` or `"closed"`. */
  get state(): TlsConnectionState {
    return this.#state;
  }

  /** What the handshake negotiated (undefined until it completes). */
  get info(): TlsInfo | undefined {
    return this.#info;
  }

  /** Ciphertext queued for the socket plus plaintext waiting for the handshake. */
  get writableLength(): number {
    return this.transport.writableLength + this.#pendingBytes;
  }

  /** Whether the peer has finished sending. */
  get readEnded(): boolean {
    return this.#readEnded;
  }

  /** The peer's address (the client's, behind a PROXY-protocol proxy). @example `conn.remoteAddress()` */
  remoteAddress(): SocketAddress {
    return this.transport.remoteAddress();
  }

  /** The local address. @example `conn.localAddress()` */
  localAddress(): SocketAddress {
    return this.transport.localAddress();
  }

  /** Called with each chunk of decrypted data. The view is only valid during the call. */
  get onData(): TlsDataHandler | undefined {
    return this.#onData;
  }

  /**
   * Set the data handler. Data decrypted before any handler was set (a
   * request sent with the client's Finished) is delivered right after this
   * task's synchronous code.
   */
  set onData(handler: TlsDataHandler | undefined) {
    this.#onData = handler;
    if (handler !== undefined && this.#state !== "handshaking") this.#scheduleDrain();
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    queueMicrotask(() => {
      this.#drainScheduled = false;
      if (this.#state === "closed") return;
      try {
        this.#deliver();
        this.#flush();
        if (!this.#readPaused && this.#early === undefined && !this.#readEnded) {
          this.transport.resume();
        }
      } catch (error) {
        this.abort(error instanceof Error ? error : new Error(String(error)));
        this.#hooks.report(error, this);
      }
    });
  }

  /** Ciphertext arrived from the transport. Throws (a handler's error) close it. */
  #onCipher(data: Uint8Array): void {
    if (this.#records !== undefined) {
      this.#onRecords(data);
      return;
    }
    const len = data.byteLength;
    let off = 0;
    while (off < len) {
      // While reading flows, a record's worth at a time: the input BIO keeps
      // the largest size it held, and a 256 KiB read would stay with the
      // connection. Otherwise (handshaking, paused, closing) all at once.
      const state = this.#state;
      if (state === "closed") return; // freed: what is left is dropped, as after close()
      const sliced = (state === "open" || state === "ending") && !this.#readPaused &&
        this.#early === undefined;
      const end = sliced ? Math.min(len, off + FEED_SLICE) : len;
      const chunk = off === 0 && end === len ? data : data.subarray(off, end);
      this.#ssl.feed(chunk);
      if (end - off > GROWN_BYTES) this.#grown = true;
      off = end;
      if (this.#state === "handshaking") {
        this.#advanceHandshake(chunk);
        if (this.#state === "handshaking") continue;
        if ((this.#state as TlsConnectionState) === "closed") return;
        if (this.#records !== undefined) {
          // The rest of this read is application data for the new record layer.
          const leftover = this.#leftover!;
          this.#leftover = undefined;
          this.#onRecords(leftover);
          return;
        }
      }
      this.#deliver();
    }
    // The records of this turn (a server's session ticket, a response the
    // handler wrote) leave together.
    if (this.#outputPending) this.#flush();
    if (this.#grown) this.#releaseBuffers();
  }

  /** Ciphertext for the user-space record layer (a view valid during this call only). */
  #onRecords(data: Uint8Array): void {
    const records = this.#records!;
    if (this.#state === "closed") return;
    records.setInput(data);
    try {
      this.#deliver();
    } finally {
      records.keepInput(); // what is left is copied: part of a record, or records held while paused
    }
    if (!records.freed) records.flushHeld();
  }

  /** Swap OpenSSL's memory BIOs for empty ones once they are both empty. */
  #releaseBuffers(): void {
    const ssl = this.#ssl;
    if (ssl.freed || this.#state === "handshaking") return;
    if (ssl.releaseBuffers()) this.#grown = false;
  }

  #advanceHandshake(chunk?: Uint8Array): void {
    let step;
    this.#outputPending = true;
    try {
      step = this.#ssl.handshake();
    } catch (error) {
      this.#flush(); // the alert that tells the peer why
      this.#error = error as Error;
      this.#state = "closing";
      this.transport.close();
      return;
    }
    if (step !== "done") {
      this.#flush();
      return;
    }
    // A server's last records (its session ticket) wait for the end of
    // #onCipher, so that a response to a request that came with the
    // client's Finished leaves in the same send.
    if (this.#ssl.context.role === "client") this.#flush();
    this.#handshakeTimer?.cancel();
    this.#handshakeTimer = undefined;
    this.#state = "open";
    this.#grown = true; // the BIOs keep the size of the handshake's flights
    this.#info = this.#readInfo();
    // Only a context that logs its traffic secrets has any to take.
    if (this.#ssl.context.logsTrafficSecrets) this.#detach(chunk);
    this.#hooks.secure(this);
    if (this.#state !== "open") return;
    if (this.#pending.length > 0) {
      const pending = this.#pending;
      this.#pending = [];
      this.#pendingBytes = 0;
      for (const chunk of pending) this.#encrypt(chunk);
      this.#flush();
      this.#onTransportDrain(); // the transport may have taken it all: no drain event would come
    }
  }

  /**
   * A TLS 1.3 server connection: move the record layer out of OpenSSL.
   * The traffic secrets come from OpenSSL's key log (named by the client
   * random); the write sequence number is the count of records OpenSSL
   * wrote since the handshake's last step began (its session tickets, taken
   * here and sent ahead of the next records); nothing was read under the
   * client's application key. OpenSSL must hold no byte it read and has not
   * used, and what it left in its input must be the end of `chunk`, the last
   * ciphertext fed: that tail is the first application data. Otherwise (or
   * for TLS 1.2) the connection keeps OpenSSL's record layer.
   */
  #detach(chunk: Uint8Array | undefined): void {
    const ssl = this.#ssl;
    const info = this.#info!;
    const secrets = takeTrafficSecrets(ssl.clientRandom); // taken either way: no secret stays behind
    try {
      if (
        !recordLayerControl.userspace || secrets === undefined || chunk === undefined ||
        info.protocol !== "TLSv1.3" || !isTls13CipherSuite(info.cipher) || ssl.hasPending
      ) {
        return;
      }
      const unread = ssl.inputPending;
      if (unread > chunk.byteLength) return;
      const tickets = new Uint8Array(ssl.pendingOutput);
      let got = 0;
      while (got < tickets.length) {
        const n = ssl.takeOutput(tickets.subarray(got));
        if (n === 0) break;
        got += n;
      }
      const written = tickets.subarray(0, got);
      const count = countRecords(written);
      if (count < 0) {
        // Not whole protected records: keep OpenSSL, and send them as it made them.
        if (this.transport.state === "open") this.transport.write(written);
        return;
      }
      let records;
      try {
        records = new Tls13Records(
          { suite: info.cipher, secrets, writeSeq: count, readSeq: 0 },
          (bytes) => {
            const t = this.transport;
            if (t.state === "open") t.write(bytes);
          },
        );
      } catch {
        // libcrypto could not make the contexts: OpenSSL keeps the records.
        if (this.transport.state === "open") this.transport.write(written);
        return;
      }
      records.hold(written);
      this.#leftover = chunk.subarray(chunk.byteLength - unread);
      this.#records = records;
      this.#grown = false;
      this.#outputPending = false;
      info.recordLayer = "ffinet";
      ssl.freeDetached();
    } finally {
      secrets?.client.fill(0);
      secrets?.server.fill(0);
    }
  }

  #readInfo(): TlsInfo {
    const ssl = this.#ssl;
    const peer = ssl.peerCertificate();
    let peerCertificate: TlsPeerCertificate | undefined;
    if (peer !== undefined) {
      try {
        peerCertificate = {
          subject: peer.subject,
          issuer: peer.issuer,
          validFrom: peer.validFrom,
          validTo: peer.validTo,
          raw: peer.toDer(),
        };
      } finally {
        peer.free();
      }
    }
    const verifyError = ssl.verifyError;
    return {
      protocol: ssl.protocol,
      cipher: ssl.cipher,
      alpnProtocol: ssl.alpnProtocol,
      serverName: ssl.serverName,
      sessionReused: ssl.sessionReused,
      peerCertificate,
      authorized: peerCertificate !== undefined && verifyError === undefined,
      authorizationError: peerCertificate === undefined
        ? "the peer sent no certificate"
        : verifyError,
      ktls: kernelTls(),
      recordLayer: "openssl",
    };
  }

  /** Decrypt and deliver what OpenSSL holds, unless paused. */
  #deliver(): void {
    const ssl = this.#ssl;
    const records = this.#records;
    const early = this.#early;
    if (
      early !== undefined && this.#onData !== undefined && !this.#readPaused &&
      (this.#state === "open" || this.#state === "ending")
    ) {
      this.#early = undefined;
      this.bytesRead += early.byteLength;
      this.#onData(early, this);
    }
    // close() stops reading, as the transport's does: nothing is delivered after it.
    while ((this.#state === "open" || this.#state === "ending") && !this.#readEnded) {
      if (this.#readPaused || this.#early !== undefined) {
        // Leave the bytes inside OpenSSL; stop reading the socket meanwhile.
        this.transport.pause();
        return;
      }
      let n;
      try {
        n = records !== undefined
          ? records.read(plainBuf, PLAIN_BUFFER_SIZE)
          : ssl.read(plainBuf, PLAIN_BUFFER_SIZE);
      } catch (error) {
        this.#badRecord(error);
        return;
      }
      if (records === undefined) this.#outputPending = true; // reading can answer (an alert, a key update)
      if (n > 0) {
        const handler = this.#onData;
        if (handler === undefined) {
          // No handler yet: keep a copy and hold reading until one is set.
          this.#early = plainBuf.slice(0, n);
          this.transport.pause();
          return;
        }
        this.bytesRead += n;
        handler(plainBuf.subarray(0, n), this);
        if (records !== undefined) continue;
        // All ciphertext taken: another read would only say "want more".
        if (ssl.freed || ssl.inputPending === 0) return;
        continue;
      }
      if (n === (records !== undefined ? RECORDS_CLOSED : SSL_READ_CLOSED)) this.#peerEnded();
      return;
    }
  }

  /**
   * `SSL_read` failed on the peer's bytes: OpenSSL has put the fatal alert
   * that names the fault in the output BIO. Send it, then close (the
   * transport flushes it first; no close_notify follows a fatal alert).
   * A fatal alert the peer sent (it gave up, say on a refused
   * renegotiation) closes the same way, with nothing to send back; it is
   * not a bad record.
   */
  #badRecord(cause: unknown): void {
    const ssl = this.#ssl;
    const records = this.#records;
    let alertSent: boolean;
    if (records !== undefined) {
      // The same alert OpenSSL would have chosen, encrypted under the current key.
      const alert = cause instanceof RecordError ? cause.alert : undefined;
      alertSent = alert !== undefined && !records.freed;
      if (alertSent) records.fatal(alert!);
    } else {
      alertSent = !ssl.freed && ssl.pendingOutput > 0;
    }
    this.#flush();
    let from = "";
    try {
      from = ` from ${formatAddress(this.transport.remoteAddress())}`;
    } catch { /* the address is gone with the socket */ }
    const errors = cause instanceof OpenSslError || cause instanceof RecordError
      ? cause.errors
      : [String(cause)];
    const received = errors.some(isReceivedAlert);
    const error = new OpenSslError(
      "read TLS data",
      errors,
      received
        ? `the peer${from} ended the connection with a fatal alert`
        : `the peer${from} sent a bad record${alertSent ? " (the alert was sent)" : ""}`,
    );
    this.#error = error;
    if (this.#state === "closed") return;
    this.#state = "closing";
    this.transport.close();
    if (!received) this.#hooks.badRecord?.(this, error);
  }

  /** The peer sent close_notify, or its TCP EOF came. */
  #peerEnded(): void {
    if (this.#readEnded) return;
    this.#readEnded = true;
    this.onEnd?.(this);
    if (this.#state === "closed") return;
    if (!this.#allowHalfOpen || this.#state === "ending") this.close();
  }

  /** Move every record OpenSSL produced to the transport. */
  #flush(): void {
    const ssl = this.#ssl;
    this.#outputPending = false;
    if (this.#records !== undefined) {
      if (!this.#records.freed) this.#records.flushHeld();
      return;
    }
    // A write can close the transport at once (EPIPE, ECONNRESET), which frees `ssl`.
    while (!ssl.freed) {
      const n = ssl.takeOutput(cipherBuf, CIPHER_BUFFER_SIZE);
      if (n === 0) return;
      const t = this.transport;
      // After end()/close() the transport takes nothing more: records are dropped.
      if (t.state === "open") t.write(cipherBuf.subarray(0, n));
      // A memory BIO hands over all it holds up to the size asked: less means empty.
      if (n < CIPHER_BUFFER_SIZE) return;
    }
  }

  #encrypt(data: Uint8Array): void {
    const records = this.#records;
    if (records !== undefined) {
      records.write(data);
      this.bytesWritten += data.byteLength;
      return;
    }
    const ssl = this.#ssl;
    const len = data.byteLength;
    for (let off = 0; off < len && !ssl.freed; off += WRITE_SLICE) {
      const end = Math.min(len, off + WRITE_SLICE);
      const slice = off === 0 && end === len ? data : data.subarray(off, end);
      this.#outputPending = true;
      const n = ssl.write(slice);
      if (n !== slice.byteLength) {
        throw new Error(`Cannot write TLS data: OpenSSL took ${n} of ${slice.byteLength} bytes`);
      }
      this.bytesWritten += n;
      if (n > GROWN_BYTES) this.#grown = true;
      // A whole slice makes at least a buffer of records: move them before the next.
      if (end < len) this.#flush();
    }
  }

  /**
   * Encrypt and send bytes. Returns false once `highWaterMark` bytes are
   * queued (`onDrain` follows when the queue empties). Before the handshake
   * completes the bytes wait for it. Throws `Deno.errors.BadResource` once
   * `end()` or `close()` has been called or the connection was closed.
   *
   * @example
   * ```ts
   * import type { TlsConnection } from "@ffinet/ffinet/tls";
   * function greet(conn: TlsConnection): void {
   *   if (!conn.write(new TextEncoder().encode("hello"))) conn.pause();
   * }
   * ```
   */
  write(data: Uint8Array): boolean {
    if (this.#state !== "open" && this.#state !== "handshaking") {
      throw new Deno.errors.BadResource(`Cannot write: the TLS connection is ${this.#state}`);
    }
    if (!(data instanceof Uint8Array)) {
      throw new TypeError("Cannot write: data is not a Uint8Array");
    }
    if (this.#state === "handshaking") {
      this.#pending.push(data.slice());
      this.#pendingBytes += data.byteLength;
    } else if (data.byteLength > 0) {
      this.#encrypt(data);
      this.#flush();
    }
    if (this.writableLength >= this.#highWaterMark) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  #onTransportDrain(): void {
    if (this.#grown) this.#releaseBuffers();
    if (this.#needDrain && this.writableLength < this.#highWaterMark) {
      this.#needDrain = false;
      this.onDrain?.(this);
    }
  }

  #onTransportEnd(): void {
    if (this.#state === "handshaking") {
      this.#error = new Deno.errors.UnexpectedEof(
        "Cannot complete TLS handshake: the peer closed the connection",
      );
      return; // the transport closes itself (no half-open before the handshake)
    }
    this.#peerEnded();
  }

  #onTransportClose(error: Error | undefined): void {
    const wasHandshaking = this.#state === "handshaking" || this.#info === undefined;
    this.#state = "closed";
    this.#handshakeTimer?.cancel();
    this.#handshakeTimer = undefined;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#records?.free();
    this.#leftover = undefined;
    if (wasHandshaking && !this.#ssl.freed && this.#ssl.context.role === "server") {
      try {
        forgetTrafficSecrets(this.#ssl.clientRandom); // a handshake that ended after the server's Finished
      } catch { /* nothing was logged */ }
    }
    this.#ssl.free();
    const why = error ?? this.#error;
    if (wasHandshaking) {
      this.#hooks.failed(
        this,
        why ?? new Deno.errors.UnexpectedEof("Cannot complete TLS handshake: connection closed"),
      );
    }
    this.onClose?.(this, why);
  }

  /**
   * Stop reading until `resume()` (decrypted bytes wait inside OpenSSL).
   *
   * @example
   * ```ts
   * import type { TlsConnection } from "@ffinet/ffinet/tls";
   * function hold(conn: TlsConnection): void {
   *   conn.pause();
   *   setTimeout(() => conn.resume(), 10);
   * }
   * ```
   */
  pause(): void {
    if (this.#readPaused) return;
    this.#readPaused = true;
    if (this.#state !== "closed") this.transport.pause();
  }

  /**
   * Start reading again after `pause()`; bytes already decrypted come first.
   *
   * @example
   * ```ts
   * import type { TlsConnection } from "@ffinet/ffinet/tls";
   * function release(conn: TlsConnection): void {
   *   conn.resume();
   * }
   * ```
   */
  resume(): void {
    if (!this.#readPaused) return;
    this.#readPaused = false;
    if (this.#state === "closed") return;
    if (this.#state === "handshaking") this.transport.resume();
    else this.#scheduleDrain();
  }

  /**
   * Half-close: send close_notify, then `shutdown(SHUT_WR)` once the queue
   * is flushed; reading goes on until the peer ends too.
   *
   * @example
   * ```ts
   * import type { TlsConnection } from "@ffinet/ffinet/tls";
   * function finish(conn: TlsConnection): void {
   *   conn.write(new TextEncoder().encode("bye"));
   *   conn.end();
   * }
   * ```
   */
  end(): void {
    if (this.#state !== "open" && this.#state !== "handshaking") return;
    if (this.#state === "handshaking" || this.#readEnded) {
      this.close();
      return;
    }
    this.#state = "ending";
    if (this.#records !== undefined) this.#records.closeNotify();
    else this.#ssl.shutdown();
    this.#flush();
    this.transport.end();
  }

  /**
   * Graceful close: send close_notify, flush what is queued, then close.
   *
   * @example
   * ```ts
   * import type { TlsConnection } from "@ffinet/ffinet/tls";
   * function done(conn: TlsConnection): void {
   *   conn.close();
   * }
   * ```
   */
  close(): void {
    if (this.#state === "closed" || this.#state === "closing") return;
    const wasEnding = this.#state === "ending";
    this.#state = "closing";
    if (!wasEnding && this.#info !== undefined) {
      if (this.#records !== undefined) this.#records.closeNotify();
      else this.#ssl.shutdown();
      this.#flush();
    }
    this.transport.close();
  }

  /**
   * Abortive close: drop what is queued and reset the connection.
   *
   * @example
   * ```ts
   * import type { TlsConnection } from "@ffinet/ffinet/tls";
   * function kill(conn: TlsConnection): void {
   *   conn.abort(new Error("bad client"));
   * }
   * ```
   */
  abort(error?: Error): void {
    if (this.#state === "closed") return;
    if (error !== undefined) this.#error = error;
    this.transport.abort(error);
  }

  /** Close gracefully (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
