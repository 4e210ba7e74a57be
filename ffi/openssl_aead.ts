/**
 * TLS 1.3 record protection with libcrypto, for a record layer that runs
 * outside OpenSSL once its handshake is over (RFC 8446 §5.2–5.3, §7.1–7.3):
 *
 * - {@linkcode RecordAead}: one direction of a connection. It derives the
 *   key and static IV from a traffic secret with HKDF-Expand-Label, keeps
 *   one `EVP_CIPHER_CTX`, and seals or opens one record per call: the nonce
 *   is the static IV XOR the record's 64-bit sequence number, the additional
 *   data the 5-byte record header. `update()` moves to the next traffic
 *   secret (a KeyUpdate).
 * - The key log: OpenSSL hands every secret it derives to a callback
 *   (`SSL_CTX_set_keylog_callback`) as an NSS key-log line. The callback
 *   keeps the two application traffic secrets of each connection, named by
 *   its client random, until {@linkcode takeTrafficSecrets} or
 *   {@linkcode forgetTrafficSecrets} removes them.
 *
 * Every call that takes a view reads its extent through the engine's own
 * getters (`bytesOf`), checks offsets and lengths against it and hands
 * OpenSSL only sub-views of that extent: nothing caller code can run sits
 * between the check and the call, and OpenSSL never writes outside the
 * region checked.
 *
 * @module
 */
import { openssl } from "./openssl.ts";
import { bytesOf } from "./_view.ts";
import { OpenSslError, takeOpenSslErrors } from "./openssl_error.ts";
import { checkInteger } from "./validate.ts";

/** The TLS 1.3 cipher suites, by OpenSSL's (and IANA's) name. */
export type Tls13CipherSuite =
  | "TLS_AES_128_GCM_SHA256"
  | "TLS_AES_256_GCM_SHA384"
  | "TLS_CHACHA20_POLY1305_SHA256";

interface Suite {
  algorithm: string;
  keyLength: number;
  hash: "sha256" | "sha384";
  hashLength: number;
}

const SUITES: Readonly<Record<Tls13CipherSuite, Suite>> = {
  TLS_AES_128_GCM_SHA256: {
    algorithm: "AES-128-GCM",
    keyLength: 16,
    hash: "sha256",
    hashLength: 32,
  },
  TLS_AES_256_GCM_SHA384: {
    algorithm: "AES-256-GCM",
    keyLength: 32,
    hash: "sha384",
    hashLength: 48,
  },
  TLS_CHACHA20_POLY1305_SHA256: {
    algorithm: "ChaCha20-Poly1305",
    keyLength: 32,
    hash: "sha256",
    hashLength: 32,
  },
};

/**
 * Whether `name` is a TLS 1.3 suite {@linkcode RecordAead} handles.
 *
 * @example
 * ```ts
 * import { isTls13CipherSuite } from "./openssl_aead.ts";
 * isTls13CipherSuite("TLS_AES_128_GCM_SHA256"); // true
 * ```
 */
export function isTls13CipherSuite(name: unknown): name is Tls13CipherSuite {
  return typeof name === "string" && Object.hasOwn(SUITES, name);
}

/** The record header (type, legacy version, length): the additional data. */
export const RECORD_HEADER: number = 5;
/** The AEAD tag every suite appends. */
export const RECORD_TAG: number = 16;
/** Inner plaintext (content, type byte, padding) one record may carry: 2^14 + 1. */
export const MAX_INNER_PLAINTEXT: number = 16384 + 1;
/** Ciphertext one record may carry: 2^14 + 256 (RFC 8446 §5.2). */
export const MAX_CIPHERTEXT: number = 16384 + 256;
const NONCE = 12;
/** `TLS1_2_VERSION`: the legacy version every TLS 1.3 record header carries. */
const LEGACY_VERSION = 0x0303;
/** `application_data`: the outer type of every protected record. */
const OUTER_TYPE = 23;

const EVP_CTRL_AEAD_GET_TAG = 0x10;
const EVP_CTRL_AEAD_SET_TAG = 0x11;

const ciphers = new Map<string, Deno.PointerObject>();

/**
 * The libcrypto cipher `algorithm` ("AES-128-GCM", "AES-256-CBC" …),
 * fetched from the default provider once and kept for the isolate's life:
 * a legacy getter such as `EVP_aes_256_cbc()` makes every `EVP_CipherInit_ex`
 * fetch it again (a locked lookup by name). Throws an `OpenSslError`.
 *
 * @example
 * ```ts
 * import { fetchCipher } from "./openssl_aead.ts";
 * fetchCipher("AES-256-CBC");
 * ```
 */
export function fetchCipher(algorithm: string): Deno.PointerObject {
  let c = ciphers.get(algorithm);
  if (c === undefined) {
    const name = new TextEncoder().encode(`${algorithm}\0`);
    const p = openssl().crypto.EVP_CIPHER_fetch(null, name, null);
    if (p === null) throw new OpenSslError(`fetch cipher ${algorithm}`);
    c = p;
    ciphers.set(algorithm, c);
  }
  return c;
}

/**
 * The last view `bytesOf` was asked about, per argument, and the engine's
 * own view over its extent: the record layer seals into and opens into the
 * same buffers record after record. A hit needs the same object and the
 * kept view (ours, an intrinsic `Uint8Array`: no caller getter runs) still
 * covering as many bytes; a detached or shrunk buffer makes it miss.
 */
class ExtentCache {
  #view: unknown = undefined;
  #bytes: Uint8Array = new Uint8Array(0);
  #length = 0;
  of(call: string, what: string, view: unknown): Uint8Array {
    const bytes = this.#bytes;
    if (view === this.#view && bytes.byteLength === this.#length && this.#length !== 0) {
      return bytes;
    }
    const fresh = bytesOf(call, what, view);
    this.#view = view;
    this.#bytes = fresh;
    this.#length = fresh.byteLength;
    return fresh;
  }
}
const sealRecords = new ExtentCache();
const openRecords = new ExtentCache();
const openOutputs = new ExtentCache();

/**
 * Cipher contexts of sleeping `RecordAead`s, by algorithm and direction,
 * for the next one that wakes: kept allocated rather than freed, so that
 * the memory of a burst of connections going idle is reused by the next
 * ones instead of leaving holes all over the heap. At most `MAX_SPARE`
 * per list; more are freed.
 */
const spare = new Map<string, Deno.PointerObject[]>();
const MAX_SPARE = 2048;

const outLength = new Int32Array(1);
const mdLength = new Uint32Array(1);
const nonce = new Uint8Array(NONCE);
const finalScratch = new Uint8Array(32);
const hmacOut = new Uint8Array(64);

/**
 * HKDF-Expand-Label(secret, label, "", length) of RFC 8446 §7.1, for
 * lengths up to one hash output (every key, IV and next secret of TLS 1.3):
 * the first `length` bytes of HMAC(secret, HkdfLabel || 0x01).
 *
 * @example
 * ```ts
 * import { hkdfExpandLabel } from "./openssl_aead.ts";
 * hkdfExpandLabel("sha256", new Uint8Array(32), "key", 16).length; // 16
 * ```
 */
export function hkdfExpandLabel(
  hash: "sha256" | "sha384",
  secret: Uint8Array,
  label: string,
  length: number,
): Uint8Array {
  const max = hash === "sha256" ? 32 : 48;
  if (hash !== "sha256" && hash !== "sha384") {
    throw new TypeError(`Cannot expand TLS secret: hash ${String(hash)} is not sha256 or sha384`);
  }
  checkInteger("expand TLS secret", "length", length, 1, max);
  const key = bytesOf("expand TLS secret", "secret", secret);
  const full = new TextEncoder().encode(`tls13 ${label}`);
  if (full.length > 255) throw new RangeError("Cannot expand TLS secret: the label is too long");
  // struct { uint16 length; opaque label<7..255>; opaque context<0..255>; } || counter 0x01
  const info = new Uint8Array(2 + 1 + full.length + 1 + 1);
  info[0] = length >> 8;
  info[1] = length & 0xff;
  info[2] = full.length;
  info.set(full, 3);
  info[3 + full.length] = 0; // empty context
  info[4 + full.length] = 1;
  const { crypto } = openssl();
  const md = hash === "sha256" ? crypto.EVP_sha256() : crypto.EVP_sha384();
  mdLength[0] = 0;
  const r = crypto.HMAC(md, key, key.byteLength, info, BigInt(info.byteLength), hmacOut, mdLength);
  if (r === null || mdLength[0] !== max) throw new OpenSslError("expand TLS secret");
  return hmacOut.slice(0, length);
}

/** Which way a {@linkcode RecordAead} works. */
export type RecordDirection = "seal" | "open";

/**
 * Throw unless `count` bytes from offset `at` lie within the `size` bytes of
 * the `whose` view (`at` an integer from 0 to 2^32 - 1).
 */
function checkSpan(
  call: string,
  at: number,
  count: number,
  what: string,
  whose: string,
  size: number,
): void {
  if (at >>> 0 !== at || at + count > size) {
    throw new RangeError(
      `Cannot ${call}: offset ${String(at)} and ${count} ${what} exceed the ${whose}'s ${size}`,
    );
  }
}

/**
 * One direction of a TLS 1.3 connection's record protection. Free it with
 * {@linkcode RecordAead.free}.
 *
 * @example Seal a record and open it again
 * ```ts
 * import { RecordAead } from "./openssl_aead.ts";
 * const secret = new Uint8Array(32).fill(7);
 * const w = RecordAead.create("TLS_AES_128_GCM_SHA256", secret, "seal");
 * const r = RecordAead.create("TLS_AES_128_GCM_SHA256", secret, "open");
 * const rec = new Uint8Array(5 + 3 + 16);
 * rec.set([104, 105, 23], 5); // "hi" and its inner type
 * const n = w.seal(rec, 0, 3, 0); // 24
 * const out = new Uint8Array(3);
 * r.open(rec, 0, n, 0, out, 0); // 3
 * w.free();
 * r.free();
 * ```
 */
export class RecordAead implements Disposable {
  /** The suite it was made for. */
  readonly suite: Tls13CipherSuite;
  readonly #spec: Suite;
  readonly #enc: number;
  readonly #cipher: Deno.PointerObject;
  /** The `EVP_CIPHER_CTX`, or null while asleep (and once freed). */
  #ctx: Deno.PointerObject | null = null;
  #freed = false;
  /** The traffic secret, the static IV, then the key (one allocation for the three). */
  readonly #state: Uint8Array;

  private constructor(
    suite: Tls13CipherSuite,
    spec: Suite,
    enc: number,
    cipher: Deno.PointerObject,
    secret: Uint8Array,
  ) {
    this.suite = suite;
    this.#spec = spec;
    this.#enc = enc;
    this.#cipher = cipher;
    this.#state = new Uint8Array(spec.hashLength + NONCE + spec.keyLength);
    this.#state.set(secret);
  }

  /**
   * A context for `suite` keyed from `secret` (an application traffic
   * secret: 32 bytes for the SHA-256 suites, 48 for SHA-384). Throws a
   * `TypeError`/`RangeError` naming the call for a bad suite or secret, an
   * `OpenSslError` when OpenSSL fails.
   *
   * @example
   * ```ts
   * import { RecordAead } from "./openssl_aead.ts";
   * RecordAead.create("TLS_CHACHA20_POLY1305_SHA256", new Uint8Array(32), "open").free();
   * ```
   */
  static create(
    suite: Tls13CipherSuite,
    secret: Uint8Array,
    direction: RecordDirection,
  ): RecordAead {
    if (!isTls13CipherSuite(suite)) {
      throw new TypeError(`Cannot create record cipher: ${String(suite)} is not a TLS 1.3 suite`);
    }
    if (direction !== "seal" && direction !== "open") {
      throw new TypeError(
        `Cannot create record cipher: direction ${String(direction)} is not seal or open`,
      );
    }
    const spec = SUITES[suite];
    const bytes = bytesOf("create record cipher", "secret", secret);
    if (bytes.byteLength !== spec.hashLength) {
      throw new RangeError(
        `Cannot create record cipher: the secret has ${bytes.byteLength} bytes, ${suite} needs ${spec.hashLength}`,
      );
    }
    const cipher = fetchCipher(spec.algorithm);
    const aead = new RecordAead(suite, spec, direction === "seal" ? 1 : 0, cipher, bytes);
    try {
      aead.#derive();
      aead.#wake();
    } catch (e) {
      aead.free();
      throw e;
    }
    return aead;
  }

  /** Derive the IV and key from the secret held. */
  #derive(): void {
    const spec = this.#spec;
    const state = this.#state;
    const secret = state.subarray(0, spec.hashLength);
    const iv = hkdfExpandLabel(spec.hash, secret, "iv", NONCE);
    const key = hkdfExpandLabel(spec.hash, secret, "key", spec.keyLength);
    state.set(iv, spec.hashLength);
    state.set(key, spec.hashLength + NONCE);
    key.fill(0);
  }

  get #key(): Uint8Array {
    const at = this.#spec.hashLength + NONCE;
    return this.#state.subarray(at, at + this.#spec.keyLength);
  }

  /** A spare (or new) `EVP_CIPHER_CTX`, keyed from the key held. */
  #wake(): Deno.PointerObject {
    if (this.#freed) throw new Deno.errors.BadResource("Cannot use record cipher: it was freed");
    const { crypto } = openssl();
    const ctx = spare.get(this.#spareKey)?.pop() ?? crypto.EVP_CIPHER_CTX_new();
    if (ctx === null) throw new OpenSslError("create record cipher");
    if (crypto.EVP_CipherInit_ex(ctx, this.#cipher, null, this.#key, null, this.#enc) !== 1) {
      crypto.EVP_CIPHER_CTX_free(ctx);
      throw new OpenSslError("key record cipher");
    }
    this.#ctx = ctx;
    return ctx;
  }

  get #spareKey(): string {
    return this.#enc === 1 ? this.#spec.algorithm : `${this.#spec.algorithm}/open`;
  }

  get #pointer(): Deno.PointerObject {
    return this.#ctx ?? this.#wake();
  }

  /** Whether {@linkcode RecordAead.free} has run. */
  get freed(): boolean {
    return this.#freed;
  }

  /** Whether the `EVP_CIPHER_CTX` is freed until the next record (see `sleep`). */
  get asleep(): boolean {
    return this.#ctx === null;
  }

  /**
   * Give the `EVP_CIPHER_CTX` (about 1.5 KiB) back to the spares and keep
   * only the key: an idle connection's cost. The next record takes one
   * again and keys it.
   *
   * @example
   * ```ts
   * import { RecordAead } from "./openssl_aead.ts";
   * using w = RecordAead.create("TLS_AES_128_GCM_SHA256", new Uint8Array(32), "seal");
   * w.sleep();
   * ```
   */
  sleep(): void {
    const ctx = this.#ctx;
    if (ctx === null) return;
    this.#ctx = null;
    const key = this.#spareKey;
    let list = spare.get(key);
    if (list === undefined) spare.set(key, list = []);
    if (list.length < MAX_SPARE) list.push(ctx);
    else openssl().crypto.EVP_CIPHER_CTX_free(ctx);
  }

  /**
   * Move to the next traffic secret (RFC 8446 §7.2, "traffic upd") and the
   * key and IV derived from it; sequence numbers start again at 0.
   *
   * @example
   * ```ts
   * import { RecordAead } from "./openssl_aead.ts";
   * using w = RecordAead.create("TLS_AES_128_GCM_SHA256", new Uint8Array(32), "seal");
   * w.update();
   * ```
   */
  update(): void {
    if (this.#freed) throw new Deno.errors.BadResource("Cannot use record cipher: it was freed");
    const spec = this.#spec;
    const next = hkdfExpandLabel(
      spec.hash,
      this.#state.subarray(0, spec.hashLength),
      "traffic upd",
      spec.hashLength,
    );
    this.#state.set(next);
    next.fill(0);
    this.#derive();
    const ctx = this.#ctx;
    if (ctx === null) return; // keyed when it wakes
    if (openssl().crypto.EVP_CipherInit_ex(ctx, null, null, this.#key, null, this.#enc) !== 1) {
      throw new OpenSslError("key record cipher");
    }
  }

  /** The nonce of record `seq`: the static IV XOR the sequence number (big-endian, right-aligned). */
  #nonce(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 0) {
      throw new RangeError(
        `Cannot protect TLS record: sequence number ${String(seq)} is out of range`,
      );
    }
    const iv = this.#state;
    const at = this.#spec.hashLength;
    nonce.set(iv.subarray(at, at + NONCE));
    const hi = Math.floor(seq / 0x1_0000_0000);
    const lo = seq >>> 0;
    nonce[4]! ^= hi >>> 24;
    nonce[5]! ^= (hi >>> 16) & 0xff;
    nonce[6]! ^= (hi >>> 8) & 0xff;
    nonce[7]! ^= hi & 0xff;
    nonce[8]! ^= lo >>> 24;
    nonce[9]! ^= (lo >>> 16) & 0xff;
    nonce[10]! ^= (lo >>> 8) & 0xff;
    nonce[11]! ^= lo & 0xff;
  }

  /**
   * Seal the inner plaintext (content, type byte, padding) of
   * `innerLength` bytes (1 to 2^14 + 1) that sits at
   * `record[at + 5 ..]`, in place, as record `seq`: writes the header at
   * `record[at]` and the tag after the ciphertext. Returns the record's
   * length (`5 + innerLength + 16`). A `RangeError` naming the call when
   * the record does not fit in `record`.
   *
   * @example
   * ```ts
   * import { RecordAead } from "./openssl_aead.ts";
   * using w = RecordAead.create("TLS_AES_128_GCM_SHA256", new Uint8Array(32), "seal");
   * const rec = new Uint8Array(22);
   * rec[5] = 23; // an empty application_data record
   * w.seal(rec, 0, 1, 0); // 22
   * ```
   */
  seal(record: Uint8Array, at: number, innerLength: number, seq: number): number {
    const call = "seal TLS record";
    const buf = sealRecords.of(call, "record", record);
    checkInteger(call, "inner length", innerLength, 1, MAX_INNER_PLAINTEXT);
    const total = RECORD_HEADER + innerLength + RECORD_TAG;
    checkSpan(call, at, total, "record bytes", "buffer", buf.byteLength);
    const ctx = this.#pointer;
    if (this.#enc !== 1) throw new TypeError(`Cannot ${call}: this cipher opens records`);
    this.#nonce(seq);
    const length = innerLength + RECORD_TAG;
    buf[at] = OUTER_TYPE;
    buf[at + 1] = LEGACY_VERSION >> 8;
    buf[at + 2] = LEGACY_VERSION & 0xff;
    buf[at + 3] = length >> 8;
    buf[at + 4] = length & 0xff;
    const { crypto } = openssl();
    const header = buf.subarray(at, at + RECORD_HEADER);
    const body = buf.subarray(at + RECORD_HEADER, at + RECORD_HEADER + innerLength);
    const tag = buf.subarray(at + RECORD_HEADER + innerLength, at + total);
    if (
      crypto.EVP_CipherInit_ex(ctx, null, null, null, nonce, -1) !== 1 ||
      crypto.EVP_CipherUpdate(ctx, null, outLength, header, RECORD_HEADER) !== 1 ||
      crypto.EVP_CipherUpdate(ctx, body, outLength, body, innerLength) !== 1 ||
      outLength[0] !== innerLength ||
      crypto.EVP_CipherFinal_ex(ctx, finalScratch, outLength) !== 1 ||
      crypto.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, RECORD_TAG, tag) !== 1
    ) {
      throw new OpenSslError(call);
    }
    return total;
  }

  /**
   * Open record `seq` of `length` bytes (header included) at `record[at]`
   * into `out[outAt ..]`: the inner plaintext's length
   * (`length - 5 - 16`), or -1 when the tag does not verify (the bytes
   * written to `out` are then garbage). The header is not checked here,
   * only authenticated. A `RangeError` naming the call when the record
   * exceeds `record`, the plaintext `out`, or the length is not one of a
   * record (22 to 5 + 2^14 + 256).
   *
   * @example
   * ```ts
   * import { RecordAead } from "./openssl_aead.ts";
   * using r = RecordAead.create("TLS_AES_128_GCM_SHA256", new Uint8Array(32), "open");
   * r.open(new Uint8Array(22), 0, 22, 0, new Uint8Array(1), 0); // -1: not a sealed record
   * ```
   */
  open(
    record: Uint8Array,
    at: number,
    length: number,
    seq: number,
    out: Uint8Array,
    outAt: number,
  ): number {
    const call = "open TLS record";
    const src = openRecords.of(call, "record", record);
    const dst = openOutputs.of(call, "output", out);
    checkInteger(
      call,
      "length",
      length,
      RECORD_HEADER + 1 + RECORD_TAG,
      RECORD_HEADER + MAX_CIPHERTEXT,
    );
    checkSpan(call, at, length, "record bytes", "buffer", src.byteLength);
    const n = length - RECORD_HEADER - RECORD_TAG;
    checkSpan(call, outAt, n, "plaintext bytes", "output", dst.byteLength);
    const ctx = this.#pointer;
    if (this.#enc !== 0) throw new TypeError(`Cannot ${call}: this cipher seals records`);
    this.#nonce(seq);
    const { crypto } = openssl();
    const header = src.subarray(at, at + RECORD_HEADER);
    const body = src.subarray(at + RECORD_HEADER, at + RECORD_HEADER + n);
    const tag = src.subarray(at + RECORD_HEADER + n, at + length);
    const plain = dst.subarray(outAt, outAt + n);
    if (
      crypto.EVP_CipherInit_ex(ctx, null, null, null, nonce, -1) !== 1 ||
      crypto.EVP_CipherUpdate(ctx, null, outLength, header, RECORD_HEADER) !== 1 ||
      crypto.EVP_CipherUpdate(ctx, plain, outLength, body, n) !== 1 ||
      outLength[0] !== n ||
      crypto.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, RECORD_TAG, tag) !== 1
    ) {
      throw new OpenSslError(call);
    }
    if (crypto.EVP_CipherFinal_ex(ctx, finalScratch, outLength) !== 1) {
      takeOpenSslErrors(); // a bad tag queues nothing useful; keep the queue empty
      return -1;
    }
    return n;
  }

  /** Free the `EVP_CIPHER_CTX` and wipe the keys (idempotent). @example `aead.free()` */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.#state.fill(0);
    this.sleep();
  }

  /** Free (for `using`). */
  [Symbol.dispose](): void {
    this.free();
  }
}

// --- the key log ---

const KEYLOG_CB = {
  // void (*cb)(const SSL *ssl, const char *line);
  parameters: ["pointer", "pointer"],
  result: "void",
} as const;

/** The two application traffic secrets of one connection. */
export interface TrafficSecrets {
  /** CLIENT_TRAFFIC_SECRET_0. */
  client: Uint8Array;
  /** SERVER_TRAFFIC_SECRET_0. */
  server: Uint8Array;
}

const CLIENT_LABEL = "CLIENT_TRAFFIC_SECRET_0 ";
const SERVER_LABEL = "SERVER_TRAFFIC_SECRET_0 ";
/** Client random (hex) → the secrets logged so far. */
const logged = new Map<string, Partial<TrafficSecrets>>();
let keylog: Deno.UnsafeCallback<typeof KEYLOG_CB> | undefined;

function fromHex(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += bytes[i]!.toString(16).padStart(2, "0");
  return s;
}

function onKeyLogLine(line: string): void {
  const client = line.startsWith(CLIENT_LABEL);
  if (!client && !line.startsWith(SERVER_LABEL)) return;
  const [, random, secretHex] = line.split(" ");
  if (random === undefined || secretHex === undefined) return;
  const secret = fromHex(secretHex);
  if (secret === undefined) return;
  const key = random.toLowerCase();
  let entry = logged.get(key);
  if (entry === undefined) logged.set(key, entry = {});
  if (client) entry.client = secret;
  else entry.server = secret;
}

/**
 * The key-log callback (`SSL_CTX_set_keylog_callback`) that keeps each
 * connection's application traffic secrets for {@linkcode takeTrafficSecrets}:
 * one per thread, made on first use and kept for the thread's life (it
 * captures nothing; contexts that use it may be cached). It never throws
 * into OpenSSL.
 *
 * @example
 * ```ts
 * import { keyLogCallback } from "./openssl_aead.ts";
 * keyLogCallback() !== null; // true
 * ```
 */
export function keyLogCallback(): Deno.PointerObject {
  keylog ??= new Deno.UnsafeCallback(KEYLOG_CB, (_ssl, line) => {
    try {
      // Only "CLIENT_TRAFFIC_SECRET_0 …" and "SERVER_TRAFFIC_SECRET_0 …" are
      // kept: their 8th character is 'T', that of the handshake, early,
      // exporter and TLS 1.2 lines is not (and those are not read at all).
      if (line !== null && new Deno.UnsafePointerView(line).getUint8(7) === 0x54) {
        onKeyLogLine(Deno.UnsafePointerView.getCString(line));
      }
    } catch { /* a line it cannot read is a connection that keeps OpenSSL's record layer */ }
  });
  return keylog.pointer;
}

/**
 * Remove and return the application traffic secrets logged for the
 * connection whose client random is `clientRandom`, or undefined when
 * either is missing (TLS 1.2, or the handshake is not complete).
 *
 * @example
 * ```ts
 * import { takeTrafficSecrets } from "./openssl_aead.ts";
 * takeTrafficSecrets(new Uint8Array(32)); // undefined
 * ```
 */
export function takeTrafficSecrets(clientRandom: Uint8Array): TrafficSecrets | undefined {
  const key = toHex(bytesOf("take traffic secrets", "client random", clientRandom));
  const entry = logged.get(key);
  if (entry === undefined) return undefined;
  logged.delete(key);
  if (entry.client === undefined || entry.server === undefined) return undefined;
  return { client: entry.client, server: entry.server };
}

/**
 * Drop whatever was logged for `clientRandom` (a connection that keeps
 * OpenSSL's record layer, or whose handshake failed).
 *
 * @example
 * ```ts
 * import { forgetTrafficSecrets } from "./openssl_aead.ts";
 * forgetTrafficSecrets(new Uint8Array(32));
 * ```
 */
export function forgetTrafficSecrets(clientRandom: Uint8Array): void {
  logged.delete(toHex(bytesOf("forget traffic secrets", "client random", clientRandom)));
}

/** How many connections have secrets logged and not yet taken (for leak tests). @example `loggedSecretCount()` */
export function loggedSecretCount(): number {
  return logged.size;
}
