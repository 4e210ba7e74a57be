/**
 * Session ticket keys that ffinet holds itself, so that several contexts,
 * threads or processes given the same key material resume each other's
 * sessions, and keys rotate on the caller's schedule.
 *
 * A key is 80 bytes: a 16-byte name (sent in the clear inside each ticket,
 * to find the key again), a 32-byte HMAC-SHA256 key and a 32-byte AES-256
 * key. The newest key encrypts new tickets; older ones (up to
 * {@linkcode TicketKeyring.keep}) still decrypt. Every resumed session is
 * sent a new ticket under the newest key (TLS 1.3 tickets are single-use
 * for most clients).
 *
 * OpenSSL asks through `SSL_CTX_set_tlsext_ticket_key_evp_cb` during the
 * handshake. The callback writes only inside the buffers OpenSSL documents
 * (`key_name[16]`, `iv[EVP_MAX_IV_LENGTH]`); any exception makes it answer
 * "no ticket" / "ticket not decrypted" (a full handshake), never success.
 *
 * @module
 */
import { openssl } from "./openssl.ts";
import { viewLength } from "./openssl_bio.ts";
import { fetchCipher } from "./openssl_aead.ts";

/** Bytes of one ticket key: name (16), HMAC key (32), AES key (32). */
export const TICKET_KEY_BYTES = 80;
const NAME_BYTES = 16;
const HMAC_BYTES = 32;
const AES_BYTES = 32;
/** `EVP_MAX_IV_LENGTH`; AES-CBC uses all 16. */
const IV_BYTES = 16;
/** `sizeof(OSSL_PARAM)` on 64-bit Linux: key, data_type (+pad), data, data_size, return_size. */
const PARAM_BYTES = 40;
/** `OSSL_PARAM_UTF8_STRING`, `OSSL_PARAM_OCTET_STRING`. */
const OSSL_PARAM_UTF8_STRING = 4;
const OSSL_PARAM_OCTET_STRING = 5;

/** One key, with the `OSSL_PARAM` array that hands its HMAC key to OpenSSL. */
interface TicketKey {
  name: Uint8Array;
  aes: Uint8Array;
  /** `{ "key": hmac }, { "digest": "SHA256" }, { NULL }`, pointing into `arena`. */
  params: Uint8Array;
  /** Holds the bytes `params` points to: off V8's heap, alive as long as the key. */
  arena: ArrayBuffer;
}

const encoder = new TextEncoder();
/**
 * The name of a presented ticket's key, copied out of OpenSSL's
 * `key_name[16]` (a copy costs far less than a view over C memory, an
 * external ArrayBuffer made for each call).
 */
const presentedName = new Uint8Array(NAME_BYTES);
/** A new ticket's IV, drawn from OpenSSL's generator, then copied into OpenSSL's `iv`. */
const newIv = new Uint8Array(IV_BYTES);

/**
 * A writable view of `length` bytes at a pointer OpenSSL hands the
 * callback, made again only when the address changes: OpenSSL passes its
 * `key_name` and `iv` as locals of the same stack frame each time, and an
 * external ArrayBuffer costs more than the copy it serves. The view is
 * only touched during the callback that passed that address, and is
 * exactly `length` long (a larger copy throws a RangeError).
 */
class CallbackView {
  readonly #length: number;
  #pointer: Deno.PointerObject | null = null;
  #view: Uint8Array = new Uint8Array(0);

  constructor(length: number) {
    this.#length = length;
  }

  at(pointer: Deno.PointerObject): Uint8Array {
    if (!Deno.UnsafePointer.equals(pointer, this.#pointer)) {
      this.#view = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer, this.#length));
      this.#pointer = pointer;
    }
    return this.#view;
  }
}
const nameOut = new CallbackView(NAME_BYTES);
const ivOut = new CallbackView(IV_BYTES);

function addressOf(view: Uint8Array): bigint {
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(view));
}

/** Build one key's structures from 80 bytes of material. */
function makeKey(material: Uint8Array): TicketKey {
  // One arena over V8's on-heap limit: its bytes never move while the key lives.
  const arena = new ArrayBuffer(1024);
  const bytes = new Uint8Array(arena);
  void bytes.buffer;
  let at = 0;
  const take = (n: number) => {
    const v = bytes.subarray(at, at + n);
    at += (n + 7) & ~7;
    return v;
  };
  const name = take(NAME_BYTES);
  const hmac = take(HMAC_BYTES);
  const aes = take(AES_BYTES);
  name.set(material.subarray(0, NAME_BYTES));
  hmac.set(material.subarray(NAME_BYTES, NAME_BYTES + HMAC_BYTES));
  aes.set(material.subarray(NAME_BYTES + HMAC_BYTES, TICKET_KEY_BYTES));
  const keyText = take(4);
  keyText.set(encoder.encode("key\0"));
  const digestText = take(7);
  digestText.set(encoder.encode("digest\0"));
  const sha = take(7);
  sha.set(encoder.encode("SHA256\0"));
  const params = take(PARAM_BYTES * 3); // the third entry stays all zero: the end marker
  const dv = new DataView(arena, params.byteOffset, params.byteLength);
  dv.setBigUint64(0, addressOf(keyText), true);
  dv.setUint32(8, OSSL_PARAM_OCTET_STRING, true);
  dv.setBigUint64(16, addressOf(hmac), true);
  dv.setBigUint64(24, BigInt(HMAC_BYTES), true);
  dv.setBigUint64(PARAM_BYTES, addressOf(digestText), true);
  dv.setUint32(PARAM_BYTES + 8, OSSL_PARAM_UTF8_STRING, true);
  dv.setBigUint64(PARAM_BYTES + 16, addressOf(sha), true);
  dv.setBigUint64(PARAM_BYTES + 24, 6n, true); // strlen("SHA256")
  return { name, aes, params, arena };
}

function sameName(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < NAME_BYTES; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The ticket keys of one server (shared by all its contexts). Newest first.
 *
 * @example
 * ```ts
 * import { TicketKeyring } from "./openssl_tickets.ts";
 * const ring = new TicketKeyring();
 * ring.rotate(); // a fresh random key encrypts new tickets; the old one still decrypts
 * console.log(ring.size); // 2
 * ```
 */
export class TicketKeyring {
  /** How many keys are kept (the newest encrypts, all decrypt). */
  readonly keep: number;
  #keys: TicketKey[] = [];

  /**
   * A ring holding one key: `material` (80 bytes), or a random one.
   * `keep` (default 3) keys are kept.
   */
  constructor(material?: Uint8Array, keep = 3) {
    if (!Number.isInteger(keep) || keep < 1 || keep > 16) {
      throw new RangeError(
        `Cannot create ticket keys: keep ${keep} is not an integer from 1 to 16`,
      );
    }
    this.keep = keep;
    this.rotate(material);
  }

  /** Keys held now. */
  get size(): number {
    return this.#keys.length;
  }

  /**
   * Make `material` (80 bytes; default random) the key for new tickets; the
   * oldest key beyond `keep` is dropped (its tickets no longer resume).
   * Throws a `RangeError` unless `material` is exactly 80 bytes.
   *
   * @example
   * ```ts
   * import { TicketKeyring } from "./openssl_tickets.ts";
   * const ring = new TicketKeyring();
   * ring.rotate(crypto.getRandomValues(new Uint8Array(80)));
   * ```
   */
  rotate(material?: Uint8Array): void {
    let bytes: Uint8Array;
    if (material === undefined) {
      bytes = crypto.getRandomValues(new Uint8Array(TICKET_KEY_BYTES));
    } else {
      const n = viewLength("set ticket keys", material);
      if (n !== TICKET_KEY_BYTES) {
        throw new RangeError(
          `Cannot set ticket keys: a key is ${TICKET_KEY_BYTES} bytes (name 16, HMAC 32, AES 32), got ${n}`,
        );
      }
      bytes = material.slice();
    }
    this.#keys.unshift(makeKey(bytes));
    bytes.fill(0);
    if (this.#keys.length > this.keep) this.#keys.length = this.keep;
  }

  /**
   * The ticket callback's work for a new ticket: name and IV written into
   * OpenSSL's buffers, cipher and MAC keyed. 1 on success, 0 for "no ticket".
   */
  encrypt(
    keyName: Deno.PointerObject,
    iv: Deno.PointerObject,
    cipherCtx: Deno.PointerObject,
    macCtx: Deno.PointerObject,
  ): number {
    const key = this.#keys[0];
    if (key === undefined) return 0;
    const { crypto: lib } = openssl();
    if (lib.RAND_bytes(newIv, IV_BYTES) !== 1) return 0;
    nameOut.at(keyName).set(key.name);
    ivOut.at(iv).set(newIv);
    if (lib.EVP_EncryptInit_ex(cipherCtx, fetchCipher("AES-256-CBC"), null, key.aes, iv) !== 1) {
      return 0;
    }
    if (lib.EVP_MAC_CTX_set_params(macCtx, key.params) !== 1) return 0;
    return 1;
  }

  /**
   * The ticket callback's work for a ticket a client presents: 2 (decrypt,
   * then send a new ticket) for a known key, 0 (an unknown key: full
   * handshake). The session is always renewed, as OpenSSL does with its
   * own keys: TLS 1.3 tickets are single-use for most clients (OpenSSL's,
   * curl's, browsers'), and a client that keeps only the session of its
   * last connection would otherwise fall back to a full handshake every
   * other time.
   */
  decrypt(
    keyName: Deno.PointerObject,
    iv: Deno.PointerObject,
    cipherCtx: Deno.PointerObject,
    macCtx: Deno.PointerObject,
  ): number {
    const name = presentedName;
    Deno.UnsafePointerView.copyInto(keyName, name); // NAME_BYTES: name's length
    let key: TicketKey | undefined;
    for (const k of this.#keys) {
      if (sameName(k.name, name)) {
        key = k;
        break;
      }
    }
    if (key === undefined) return 0;
    const { crypto: lib } = openssl();
    if (lib.EVP_MAC_CTX_set_params(macCtx, key.params) !== 1) return 0;
    if (lib.EVP_DecryptInit_ex(cipherCtx, fetchCipher("AES-256-CBC"), null, key.aes, iv) !== 1) {
      return 0;
    }
    return 2;
  }
}
