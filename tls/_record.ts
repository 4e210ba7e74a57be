/**
 * Private: TLS 1.3's record layer in user space (RFC 8446 §5), for a
 * server connection once OpenSSL's handshake is over. OpenSSL does the
 * handshake and writes its session tickets; then the traffic secrets
 * (from its key log), the cipher suite and the sequence numbers move here
 * and the `SSL` object is freed, as kernel TLS takes the record layer over
 * from it. Each direction is one `RecordAead` (ffi/openssl_aead.ts).
 *
 * Reading: ciphertext arrives in views valid only during the transport's
 * call. Whole records are opened straight from that view; only what is
 * left (part of a record, or records held while reading is paused) is
 * copied into a buffer of the connection's own, freed again once empty.
 * Consecutive application_data records are opened into one plaintext
 * buffer and delivered together.
 *
 * What the peer may send: application_data, alerts (close_notify ends
 * reading; user_canceled is ignored; any other alert ends the connection)
 * and KeyUpdate (the read key moves on; an `update_requested` one gets our
 * own KeyUpdate, after which the write key moves on). Anything else, and
 * every fault, throws a {@linkcode RecordError} that names the fatal alert
 * to send and OpenSSL's reason for the same fault, so the error reads as
 * OpenSSL's would: a record over 2^14 + 256 bytes or a plaintext over
 * 2^14 is `record_overflow`, a tag that does not verify `bad_record_mac`,
 * an unprotected record, a record with no content type, any handshake
 * message but KeyUpdate (a NewSessionTicket or CertificateRequest from a
 * client …) or a KeyUpdate not at a record's end `unexpected_message`, a
 * malformed alert or KeyUpdate `decode_error`/`illegal_parameter`.
 *
 * Writing: up to 2^14 bytes per record, several records per send. After
 * 2^24 records under one key (AES-GCM's safety margin, RFC 8446 §5.5) a
 * KeyUpdate moves the write key on by itself. A read sequence number that
 * would pass 2^53 closes the connection (it cannot wrap).
 *
 * @module
 */
import {
  MAX_CIPHERTEXT,
  RECORD_HEADER,
  RECORD_TAG,
  RecordAead,
  type Tls13CipherSuite,
  type TrafficSecrets,
} from "../ffi/openssl_aead.ts";
import { sslReasonText } from "../ffi/openssl_error.ts";

/**
 * Whether TLS 1.3 server connections made from now on move their record
 * layer out of OpenSSL after the handshake. Off: measured with
 * `compare.sh tls`, the move costs more CPU per handshake (the key log,
 * the AEAD contexts) than it saves per request, for about half the memory
 * of an idle connection. Read when a listener's contexts are made (they
 * log the traffic secrets only when it is on) and at each handshake's end.
 */
export const recordLayerControl: { userspace: boolean } = { userspace: false };

/** {@linkcode Tls13Records.read}: the peer sent close_notify. */
export const RECORDS_CLOSED: number = -1;

/** Plaintext one record carries at most (2^14). */
const MAX_PLAINTEXT = 16384;
/** Records sealed into one send at most. */
const RECORDS_PER_SEND = 4;
/** Bytes kept ahead of the records of a send for output written before them (session tickets). */
const PREFIX_ROOM = 4096;
const SEAL_BUFFER = PREFIX_ROOM +
  RECORDS_PER_SEND * (RECORD_HEADER + MAX_PLAINTEXT + 1 + RECORD_TAG);
const sealBuf = new Uint8Array(SEAL_BUFFER);
/**
 * A layer that sent and received nothing for a whole period of this length
 * (one to two of them) frees its two cipher contexts and keeps only the
 * keys; its next record makes them again.
 */
const IDLE_SLEEP_MS = 1000;
/** Layers whose cipher contexts are allocated. */
const awake = new Set<Tls13Records>();
let sweepTimer: ReturnType<typeof setTimeout> | undefined;

function armSweep(): void {
  if (sweepTimer !== undefined) return;
  const timer = setTimeout(sweepIdle, IDLE_SLEEP_MS);
  Deno.unrefTimer(timer);
  sweepTimer = timer;
}

function sweepIdle(): void {
  sweepTimer = undefined;
  for (const layer of awake) layer.sleepIfIdle();
  if (awake.size > 0) armSweep();
}

/** Records under one write key before a KeyUpdate. */
export const WRITE_KEY_LIMIT: number = 2 ** 24;

const TYPE = { alert: 21, handshake: 22, applicationData: 23 } as const;
const HANDSHAKE_KEY_UPDATE = 24;
const ALERT_WARNING = 1;
const ALERT_FATAL = 2;

/** Alert descriptions (RFC 8446 §6). */
export const ALERT = {
  closeNotify: 0,
  unexpectedMessage: 10,
  badRecordMac: 20,
  recordOverflow: 22,
  illegalParameter: 47,
  decodeError: 50,
  internalError: 80,
  userCanceled: 90,
} as const;

/** OpenSSL's `SSL_R_*` reasons for the same faults (its error text names them). */
const REASON = {
  badRecordMac: 281, // decryption failed or bad record mac
  packetTooLong: 198, // packet length too long
  dataTooLong: 146, // data length too long
  unexpectedMessage: 244, // unexpected message
  badRecordType: 443, // bad record type
  badLength: 271, // bad length
  badKeyUpdate: 122, // bad key update
  notOnRecordBoundary: 182, // not on record boundary
  invalidAlert: 205, // invalid alert
  alertReceived: 1000, // + the alert: "sslv3 alert …", "tlsv1 alert …"
} as const;

/** A fault in the peer's records: the alert to send (none for one the peer sent), and OpenSSL's text. */
export class RecordError extends Error {
  /** The fatal alert to send, or undefined when the peer sent one. */
  readonly alert: number | undefined;
  /** OpenSSL's error text for the fault ("error:0A000119:SSL routines::…"). */
  readonly errors: readonly string[];

  /** A fault answered with `alert` (undefined: the peer's own alert), as OpenSSL's `reason`. */
  constructor(alert: number | undefined, reason: number) {
    const text = sslReasonText(reason);
    super(text);
    this.name = "RecordError";
    this.alert = alert;
    this.errors = [text];
  }
}

/** Where one connection's records stand after its handshake. */
export interface RecordLayerStart {
  /** The negotiated suite. */
  suite: Tls13CipherSuite;
  /** The application traffic secrets (copied: the caller may wipe them). */
  secrets: TrafficSecrets;
  /** Records OpenSSL wrote under the server's application key (its session tickets). */
  writeSeq: number;
  /** Records OpenSSL read under the client's application key. */
  readSeq: number;
}

/**
 * Count the records in `bytes` (whole records, as OpenSSL wrote them):
 * the number, or -1 when they do not end on a record's end or one is not
 * a protected record.
 */
export function countRecords(bytes: Uint8Array): number {
  let at = 0;
  let n = 0;
  while (at < bytes.length) {
    if (bytes.length - at < RECORD_HEADER || bytes[at] !== TYPE.applicationData) return -1;
    at += RECORD_HEADER + ((bytes[at + 3]! << 8) | bytes[at + 4]!);
    n++;
  }
  return at === bytes.length ? n : -1;
}

/**
 * One server connection's TLS 1.3 records: `read()` opens what arrived,
 * `write()` seals and sends through `send` (which must copy what it keeps).
 */
export class Tls13Records {
  readonly #read: RecordAead;
  readonly #write: RecordAead;
  readonly #send: (records: Uint8Array) => void;
  #readSeq: number;
  #writeSeq: number;
  /** The peer's close_notify came. */
  #peerClosed = false;
  /** A fatal alert or close_notify went out: nothing more is sealed. */
  #writeClosed = false;
  /** A fault met after plaintext that is delivered first. */
  #error: RecordError | undefined;
  /** A handshake message begun in one record and continued in the next. */
  #hs: Uint8Array | undefined;
  #hsLength = 0;
  /** Ciphertext the connection keeps: [#pendAt, #pendEnd) of #pend. */
  #pend: Uint8Array | undefined;
  #pendAt = 0;
  #pendEnd = 0;
  /** The transport's view being read (valid during its call only). */
  #cur: Uint8Array | undefined;
  #curAt = 0;
  /** Records written before this layer took over, to go out ahead of the next ones. */
  #prefix: Uint8Array | undefined;
  /** A record went either way since the last sweep. */
  #used = false;
  /** In `awake`: the cipher contexts are allocated. */
  #awake = false;

  /** A server's layer from `start`; records leave through `send`. */
  constructor(start: RecordLayerStart, send: (records: Uint8Array) => void) {
    this.#read = RecordAead.create(start.suite, start.secrets.client, "open");
    try {
      this.#write = RecordAead.create(start.suite, start.secrets.server, "seal");
    } catch (e) {
      this.#read.free();
      throw e;
    }
    this.#readSeq = start.readSeq;
    this.#writeSeq = start.writeSeq;
    this.#send = send;
    this.#touch();
  }

  /** A record is about to go one way or the other: the contexts stay (or come back). */
  #touch(): void {
    this.#used = true;
    if (this.#awake) return;
    this.#awake = true;
    awake.add(this);
    armSweep();
  }

  /** The sweep: free the cipher contexts when no record went since the last one. */
  sleepIfIdle(): void {
    if (this.#used) {
      this.#used = false;
      return;
    }
    this.#read.sleep();
    this.#write.sleep();
    this.#awake = false;
    awake.delete(this);
  }

  /** Whether the cipher contexts are freed until the next record. */
  get asleep(): boolean {
    return !this.#awake;
  }

  /** The suite. */
  get suite(): Tls13CipherSuite {
    return this.#write.suite;
  }

  /** Whether the layer's contexts are freed. */
  get freed(): boolean {
    return this.#write.freed;
  }

  /** Ciphertext held (part of a record, or records held while paused). */
  get bufferedBytes(): number {
    return this.#pendEnd - this.#pendAt;
  }

  /** Free both contexts and the buffers (idempotent). */
  free(): void {
    this.#read.free();
    this.#write.free();
    if (this.#awake) {
      this.#awake = false;
      awake.delete(this);
      if (awake.size === 0 && sweepTimer !== undefined) {
        clearTimeout(sweepTimer);
        sweepTimer = undefined;
      }
    }
    this.#pend = undefined;
    this.#cur = undefined;
    this.#hs = undefined;
    this.#prefix = undefined;
  }

  // --- reading ---

  /** Read from `data` (valid during this call only) until {@linkcode Tls13Records.keepInput}. */
  setInput(data: Uint8Array): void {
    this.#cur = data;
    this.#curAt = 0;
  }

  /** Copy what `setInput`'s view still holds into the layer's own buffer; free it when empty. */
  keepInput(): void {
    const cur = this.#cur;
    this.#cur = undefined;
    if (cur !== undefined && this.#curAt < cur.length) {
      this.#append(cur, this.#curAt, cur.length);
    }
    if (this.#pendAt === this.#pendEnd) {
      this.#pend = undefined;
      this.#pendAt = this.#pendEnd = 0;
    }
  }

  /** Append src[from, to) to the kept ciphertext, compacting or growing it. */
  #append(src: Uint8Array, from: number, to: number): void {
    const n = to - from;
    const held = this.#pendEnd - this.#pendAt;
    let pend = this.#pend;
    if (pend === undefined || this.#pendEnd + n > pend.length) {
      const next = new Uint8Array(held + n);
      if (pend !== undefined && held > 0) next.set(pend.subarray(this.#pendAt, this.#pendEnd));
      pend = this.#pend = next;
      this.#pendAt = 0;
      this.#pendEnd = held;
    }
    pend.set(src.subarray(from, to), this.#pendEnd);
    this.#pendEnd += n;
  }

  /** The length of the record at src[at] (header included), -1 when the header is incomplete; throws on a bad header. */
  #recordLength(src: Uint8Array, at: number, avail: number): number {
    if (avail < RECORD_HEADER) return -1;
    if (src[at] !== TYPE.applicationData) {
      throw new RecordError(ALERT.unexpectedMessage, REASON.badRecordType);
    }
    const len = (src[at + 3]! << 8) | src[at + 4]!;
    if (len > MAX_CIPHERTEXT) throw new RecordError(ALERT.recordOverflow, REASON.packetTooLong);
    if (len < 1 + RECORD_TAG) throw new RecordError(ALERT.badRecordMac, REASON.badRecordMac);
    return RECORD_HEADER + len;
  }

  /**
   * Open the records that are complete, into `out` from its start (at
   * most `cap` bytes): the plaintext bytes (0: more ciphertext is needed),
   * or {@linkcode RECORDS_CLOSED} once the peer's close_notify came and
   * all before it was returned. Throws a {@linkcode RecordError} (after
   * returning the plaintext that came before the fault).
   */
  read(out: Uint8Array, cap: number): number {
    if (this.#error !== undefined) throw this.#error;
    this.#touch();
    return this.#readRecords(out, cap);
  }

  #readRecords(out: Uint8Array, cap: number): number {
    let produced = 0;
    for (;;) {
      if (this.#peerClosed) return produced > 0 ? produced : RECORDS_CLOSED;
      let src: Uint8Array;
      let at: number;
      let total: number;
      if (this.#pendEnd > this.#pendAt) {
        src = this.#pend!;
        at = this.#pendAt;
        const avail = this.#pendEnd - at;
        try {
          total = this.#recordLength(src, at, avail);
        } catch (e) {
          return this.#fail(e, produced);
        }
        const need = total < 0 ? RECORD_HEADER : total;
        if (avail < need) {
          // Complete the kept record from the view, no more.
          const cur = this.#cur;
          const have = cur === undefined ? 0 : cur.length - this.#curAt;
          if (have === 0) return produced;
          const take = Math.min(need - avail, have);
          if (this.#pend!.length - this.#pendAt < need) {
            const grown = new Uint8Array(need);
            grown.set(src.subarray(at, this.#pendEnd));
            this.#pend = grown;
            this.#pendAt = 0;
            this.#pendEnd = avail;
          }
          this.#pend!.set(cur!.subarray(this.#curAt, this.#curAt + take), this.#pendEnd);
          this.#pendEnd += take;
          this.#curAt += take;
          continue;
        }
      } else {
        const cur = this.#cur;
        if (cur === undefined) return produced;
        src = cur;
        at = this.#curAt;
        try {
          total = this.#recordLength(src, at, cur.length - at);
        } catch (e) {
          return this.#fail(e, produced);
        }
        if (total < 0 || cur.length - at < total) return produced;
      }
      const inner = total - RECORD_HEADER - RECORD_TAG;
      if (produced + inner > cap) return produced; // deliver what is open first
      const n = this.#read.open(src, at, total, this.#readSeq, out, produced);
      if (src === this.#cur) {
        this.#curAt += total;
      } else if ((this.#pendAt += total) === this.#pendEnd) {
        this.#pend = undefined; // nothing kept: give the buffer back
        this.#pendAt = this.#pendEnd = 0;
      }
      if (n < 0) {
        return this.#fail(new RecordError(ALERT.badRecordMac, REASON.badRecordMac), produced);
      }
      if (++this.#readSeq > Number.MAX_SAFE_INTEGER - 1) {
        return this.#fail(new RecordError(ALERT.internalError, REASON.badLength), produced);
      }
      // TLSInnerPlaintext: content, the type byte, zero padding.
      let end = produced + n;
      while (end > produced && out[end - 1] === 0) end--;
      if (end === produced) {
        return this.#fail(new RecordError(ALERT.unexpectedMessage, REASON.badRecordType), produced);
      }
      const type = out[end - 1]!;
      const length = end - 1 - produced;
      if (length > MAX_PLAINTEXT) {
        return this.#fail(new RecordError(ALERT.recordOverflow, REASON.dataTooLong), produced);
      }
      try {
        if (type === TYPE.applicationData) {
          if (this.#hs !== undefined) {
            throw new RecordError(ALERT.unexpectedMessage, REASON.unexpectedMessage);
          }
          produced += length;
        } else if (type === TYPE.alert) {
          this.#onAlert(out, produced, length);
        } else if (type === TYPE.handshake) {
          this.#onHandshake(out, produced, length);
        } else {
          throw new RecordError(ALERT.unexpectedMessage, REASON.badRecordType);
        }
      } catch (e) {
        return this.#fail(e, produced);
      }
    }
  }

  /** A fault: thrown now, or kept for the next read when plaintext before it is pending. */
  #fail(error: unknown, produced: number): number {
    if (!(error instanceof RecordError) || produced === 0) throw error;
    this.#error = error;
    return produced;
  }

  #onAlert(buf: Uint8Array, at: number, length: number): void {
    if (this.#hs !== undefined) {
      throw new RecordError(ALERT.unexpectedMessage, REASON.unexpectedMessage);
    }
    // RFC 8446 §5.1: an alert is never fragmented nor coalesced.
    if (length !== 2) throw new RecordError(ALERT.decodeError, REASON.invalidAlert);
    const description = buf[at + 1]!;
    if (description === ALERT.closeNotify) {
      this.#peerClosed = true;
      return;
    }
    if (description === ALERT.userCanceled) return;
    throw new RecordError(undefined, REASON.alertReceived + description);
  }

  #onHandshake(buf: Uint8Array, at: number, length: number): void {
    if (length === 0) throw new RecordError(ALERT.unexpectedMessage, REASON.unexpectedMessage);
    let i = at;
    const end = at + length;
    while (i < end) {
      // Only KeyUpdate (type, 3-byte length 1, one byte) may come: 5 bytes at most.
      const hs = this.#hs ??= new Uint8Array(5);
      hs[this.#hsLength++] = buf[i++]!;
      if (hs[0] !== HANDSHAKE_KEY_UPDATE) {
        throw new RecordError(ALERT.unexpectedMessage, REASON.unexpectedMessage);
      }
      if (this.#hsLength === 4 && (hs[1] !== 0 || hs[2] !== 0 || hs[3] !== 1)) {
        throw new RecordError(ALERT.decodeError, REASON.badLength);
      }
      if (this.#hsLength < 5) continue;
      const request = hs[4]!;
      this.#hs = undefined;
      this.#hsLength = 0;
      if (request > 1) throw new RecordError(ALERT.illegalParameter, REASON.badKeyUpdate);
      // The new key applies from the next record: nothing may follow in this one.
      if (i !== end) throw new RecordError(ALERT.unexpectedMessage, REASON.notOnRecordBoundary);
      this.#read.update();
      this.#readSeq = 0;
      if (request === 1 && !this.#writeClosed) this.#sendKeyUpdate();
    }
  }

  // --- writing ---

  /** Records written before this layer took over: they go out ahead of the next send. */
  hold(records: Uint8Array): void {
    if (records.length === 0) return;
    if (records.length > PREFIX_ROOM) {
      this.#send(records);
      return;
    }
    this.#prefix = records.slice();
  }

  /** Send what {@linkcode Tls13Records.hold} kept, if nothing took it along yet. */
  flushHeld(): void {
    const prefix = this.#prefix;
    if (prefix === undefined) return;
    this.#prefix = undefined;
    this.#send(prefix);
  }

  /** Put the held records at the start of the seal buffer; returns where records start. */
  #takePrefix(): number {
    const prefix = this.#prefix;
    if (prefix === undefined) return 0;
    this.#prefix = undefined;
    sealBuf.set(prefix);
    return prefix.length;
  }

  /** Seal one record of `type` with content `src[from, to)` at sealBuf[at]; returns its length. */
  #sealRecord(at: number, type: number, src: Uint8Array, from: number, to: number): number {
    const n = to - from;
    sealBuf.set(from === 0 && to === src.length ? src : src.subarray(from, to), at + RECORD_HEADER);
    sealBuf[at + RECORD_HEADER + n] = type;
    return this.#write.seal(sealBuf, at, n + 1, this.#writeSeq++);
  }

  /** Send our KeyUpdate (`update_not_requested`) and move the write key on. */
  #sendKeyUpdate(): void {
    let pos = this.#takePrefix();
    pos += this.#sealRecord(pos, TYPE.handshake, KEY_UPDATE, 0, KEY_UPDATE.length);
    this.#write.update();
    this.#writeSeq = 0;
    this.#send(sealBuf.subarray(0, pos));
  }

  /** Seal `data` as application_data records and send them. */
  write(data: Uint8Array): void {
    this.#touch();
    const len = data.length;
    let off = 0;
    while (off < len && !this.#write.freed && !this.#writeClosed) {
      let pos = this.#takePrefix();
      for (let r = 0; r < RECORDS_PER_SEND && off < len; r++) {
        if (this.#writeSeq >= WRITE_KEY_LIMIT) {
          pos += this.#sealRecord(pos, TYPE.handshake, KEY_UPDATE, 0, KEY_UPDATE.length);
          this.#write.update();
          this.#writeSeq = 0;
        }
        const end = Math.min(len, off + MAX_PLAINTEXT);
        pos += this.#sealRecord(pos, TYPE.applicationData, data, off, end);
        off = end;
      }
      this.#send(sealBuf.subarray(0, pos));
    }
  }

  /** Send an alert; a fatal one (or close_notify) ends writing. */
  #alert(level: number, description: number): void {
    if (this.#writeClosed || this.#write.freed) return;
    this.#touch();
    this.#writeClosed = true;
    alertBody[0] = level;
    alertBody[1] = description;
    let pos = this.#takePrefix();
    pos += this.#sealRecord(pos, TYPE.alert, alertBody, 0, 2);
    this.#send(sealBuf.subarray(0, pos));
  }

  /** Send close_notify (once). */
  closeNotify(): void {
    this.#alert(ALERT_WARNING, ALERT.closeNotify);
  }

  /** Send fatal alert `description` (once). */
  fatal(description: number): void {
    this.#alert(ALERT_FATAL, description);
  }
}

/** KeyUpdate(update_not_requested). */
const KEY_UPDATE = Uint8Array.of(HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0);
const alertBody = new Uint8Array(2);
