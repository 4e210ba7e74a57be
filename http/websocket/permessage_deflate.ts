/**
 * permessage-deflate (RFC 7692): the negotiation of its parameters and the
 * compression of messages through zlib.
 *
 * Memory: zlib's state costs about 40 KiB to inflate and 256 KiB to
 * deflate with a 15-bit window. Without context takeover (the default in
 * both directions) no state outlives a message, so this thread shares one
 * compressor per setting among all connections, and inflaters come from a
 * small pool for the time one message arrives: an idle connection costs no
 * zlib memory. With context takeover a connection keeps its own streams.
 *
 * @module
 */
import { RawDeflate, RawInflate, ZlibError } from "../../ffi/zlib.ts";
import type { MessageInflater } from "./frame_parser.ts";

/**
 * Server settings of permessage-deflate.
 *
 * @example
 * ```ts
 * import type { PerMessageDeflateOptions } from "@ffinet/ffinet/http";
 * const options: PerMessageDeflateOptions = { serverNoContextTakeover: false };
 * ```
 */
export interface PerMessageDeflateOptions {
  /** Forget the window after each message sent (less memory). Default true. */
  serverNoContextTakeover?: boolean;
  /** Ask clients to forget their window after each message. Default true. */
  clientNoContextTakeover?: boolean;
  /** The largest window this server compresses with, 9-15. Default 15. */
  serverMaxWindowBits?: number;
  /** The largest window asked of clients that allow it, 8-15. Default 15. */
  clientMaxWindowBits?: number;
  /** zlib's compression level, 0-9 (default 1: fast). */
  level?: number;
  /** Messages shorter than this many bytes go out uncompressed. Default 32. */
  threshold?: number;
}

/**
 * The parameters agreed with a client, and the response header value.
 *
 * @example
 * ```ts
 * import { negotiatePerMessageDeflate } from "@ffinet/ffinet/websocket";
 * const agreed = negotiatePerMessageDeflate("permessage-deflate; client_max_window_bits");
 * console.log(agreed?.header); // permessage-deflate; server_no_context_takeover; client_no_context_takeover
 * ```
 */
export interface DeflateAgreement {
  /** This server forgets its window after each message. */
  serverNoContextTakeover: boolean;
  /** The client forgets its window after each message. */
  clientNoContextTakeover: boolean;
  /** The window this server compresses with (9-15). */
  serverMaxWindowBits: number;
  /** The largest window the client compresses with (8-15). */
  clientMaxWindowBits: number;
  /** zlib's compression level. */
  level: number;
  /** Messages shorter than this go out uncompressed. */
  threshold: number;
  /** The `Sec-WebSocket-Extensions` value of the response. */
  header: string;
}

/** Split `value` at `sep` outside double quotes. */
function splitOutsideQuotes(value: string, sep: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '"') quoted = !quoted;
    else if (c === "\\" && quoted) i++;
    else if (c === sep && !quoted) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out;
}

const BITS = /^(?:[89]|1[0-5])$/;

function bitsOption(name: string, value: unknown, min: number): number {
  if (value === undefined) return 15;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > 15) {
    throw new RangeError(
      `Cannot use the permessage-deflate options: ${name} ${
        String(value)
      } is not from ${min} to 15`,
    );
  }
  return value;
}

/**
 * Choose the first acceptable `permessage-deflate` offer of a
 * `Sec-WebSocket-Extensions` request header (RFC 7692 §7.1): offers with
 * unknown, repeated or invalid parameters are declined, and so is one that
 * asks for an 8-bit server window (zlib cannot make raw streams with it).
 * Returns null when no offer is acceptable (the connection goes on without
 * compression).
 *
 * @throws {RangeError} For options out of range.
 *
 * @example
 * ```ts
 * import { negotiatePerMessageDeflate } from "@ffinet/ffinet/websocket";
 * const agreed = negotiatePerMessageDeflate(
 *   "permessage-deflate; server_max_window_bits=10",
 *   { serverNoContextTakeover: false, clientNoContextTakeover: false },
 * );
 * console.log(agreed?.header); // permessage-deflate; server_max_window_bits=10
 * ```
 */
export function negotiatePerMessageDeflate(
  offers: string | null,
  options: PerMessageDeflateOptions = {},
): DeflateAgreement | null {
  const wantServerBits = bitsOption("serverMaxWindowBits", options.serverMaxWindowBits, 9);
  const wantClientBits = bitsOption("clientMaxWindowBits", options.clientMaxWindowBits, 8);
  const level = options.level ?? 1;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new RangeError(
      `Cannot use the permessage-deflate options: level ${level} is not from 0 to 9`,
    );
  }
  const threshold = options.threshold ?? 32;
  if (!Number.isInteger(threshold) || threshold < 0) {
    throw new RangeError(
      `Cannot use the permessage-deflate options: threshold ${threshold} is not an integer >= 0`,
    );
  }
  if (offers === null) return null;
  for (const offer of splitOutsideQuotes(offers, ",")) {
    const [name, ...rawParams] = splitOutsideQuotes(offer, ";").map((s) => s.trim());
    if (name?.toLowerCase() !== "permessage-deflate") continue;
    const params = new Map<string, string | true>();
    let ok = true;
    for (const raw of rawParams) {
      if (raw === "") continue;
      const eq = raw.indexOf("=");
      const key = (eq < 0 ? raw : raw.slice(0, eq)).trim().toLowerCase();
      let value: string | true = true;
      if (eq >= 0) {
        value = raw.slice(eq + 1).trim();
        if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
          value = value.slice(1, -1);
        }
      }
      if (params.has(key)) {
        ok = false;
        break;
      }
      params.set(key, value);
    }
    if (!ok) continue;
    let serverNoContext = options.serverNoContextTakeover ?? true;
    let clientNoContext = options.clientNoContextTakeover ?? true;
    let serverBits = wantServerBits;
    let serverBitsAsked = false;
    let clientBits = 15;
    let clientBitsAllowed = false;
    for (const [key, value] of params) {
      if (key === "server_no_context_takeover" && value === true) serverNoContext = true;
      else if (key === "client_no_context_takeover" && value === true) clientNoContext = true;
      else if (key === "server_max_window_bits" && value !== true && BITS.test(value)) {
        serverBits = Math.min(serverBits, Number(value));
        serverBitsAsked = true;
      } else if (key === "client_max_window_bits" && (value === true || BITS.test(value))) {
        clientBitsAllowed = true;
        clientBits = Math.min(wantClientBits, value === true ? 15 : Number(value));
      } else {
        ok = false;
        break;
      }
    }
    if (!ok || serverBits < 9) continue;
    let header = "permessage-deflate";
    if (serverNoContext) header += "; server_no_context_takeover";
    if (clientNoContext) header += "; client_no_context_takeover";
    if (serverBitsAsked || serverBits < 15) header += `; server_max_window_bits=${serverBits}`;
    if (clientBitsAllowed && clientBits < 15) header += `; client_max_window_bits=${clientBits}`;
    return {
      serverNoContextTakeover: serverNoContext,
      clientNoContextTakeover: clientNoContext,
      serverMaxWindowBits: serverBits,
      clientMaxWindowBits: clientBits,
      level,
      threshold,
      header,
    };
  }
  return null;
}

/**
 * A connection's compression: the {@linkcode MessageInflater} of its
 * parser, and the compressor of its messages.
 *
 * @example
 * ```ts
 * import { createMessageDeflate, negotiatePerMessageDeflate } from "@ffinet/ffinet/websocket";
 * const agreed = negotiatePerMessageDeflate("permessage-deflate")!;
 * const deflate = createMessageDeflate(agreed);
 * const packed = deflate.compress(new TextEncoder().encode("hello"));
 * deflate.close();
 * console.log(packed !== null);
 * ```
 */
export interface MessageDeflate extends MessageInflater {
  /**
   * The payload of one compressed message (the RFC 7692 tail removed), or
   * null when the message is below the threshold and goes uncompressed.
   */
  compress(data: Uint8Array): Uint8Array | null;
  /** Free this connection's zlib state (idempotent). */
  close(): void;
}

const TAIL_LENGTH = 4;
const POOL_MAX = 16;

/** This thread's shared compressors (no context takeover), per window and level. */
const sharedDeflaters = new Map<number, RawDeflate>();
/** Idle inflaters (no context takeover), per window. */
const inflaterPool = new Map<number, RawInflate[]>();

function sharedDeflater(bits: number, level: number): RawDeflate {
  const key = bits * 16 + level;
  let d = sharedDeflaters.get(key);
  if (d === undefined) {
    d = new RawDeflate({ windowBits: bits, level });
    sharedDeflaters.set(key, d);
  }
  return d;
}

class ConnectionDeflate implements MessageDeflate {
  readonly #agreed: DeflateAgreement;
  #ownDeflater: RawDeflate | undefined;
  #inflater: RawInflate | undefined;
  #closed = false;

  constructor(agreed: DeflateAgreement) {
    this.#agreed = agreed;
  }

  compress(data: Uint8Array): Uint8Array | null {
    const a = this.#agreed;
    if (data.byteLength < a.threshold || this.#closed) return null;
    let out: Uint8Array;
    if (a.serverNoContextTakeover) {
      const d = sharedDeflater(a.serverMaxWindowBits, a.level);
      try {
        out = d.compress(data, "sync");
      } finally {
        d.reset();
      }
    } else {
      this.#ownDeflater ??= new RawDeflate({ windowBits: a.serverMaxWindowBits, level: a.level });
      out = this.#ownDeflater.compress(data, "sync");
    }
    return out.subarray(0, out.length - TAIL_LENGTH);
  }

  #inflaterBits(): number {
    // zlib's compressor never uses an 8-bit window (it makes 9): allow 9.
    return Math.max(9, this.#agreed.clientMaxWindowBits);
  }

  inflate(input: Uint8Array, limit: number): Uint8Array | 1007 | 1009 {
    if (this.#closed) return 1007;
    if (this.#inflater === undefined) {
      const bits = this.#inflaterBits();
      const pool = this.#agreed.clientNoContextTakeover ? inflaterPool.get(bits) : undefined;
      this.#inflater = pool?.pop() ?? new RawInflate({ windowBits: bits });
    }
    try {
      return this.#inflater.inflate(input, limit) ?? 1009;
    } catch (e) {
      if (e instanceof ZlibError) return 1007;
      throw e;
    }
  }

  endMessage(): void {
    const inflater = this.#inflater;
    if (inflater === undefined || !this.#agreed.clientNoContextTakeover) return;
    this.#inflater = undefined;
    this.#release(inflater);
  }

  #release(inflater: RawInflate): void {
    const bits = this.#inflaterBits();
    let pool = inflaterPool.get(bits);
    if (pool === undefined) inflaterPool.set(bits, pool = []);
    if (pool.length < POOL_MAX) {
      inflater.reset();
      pool.push(inflater);
    } else {
      inflater.close();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ownDeflater?.close();
    this.#ownDeflater = undefined;
    // An inflater mid-message (or with the peer's context) is not reused.
    this.#inflater?.close();
    this.#inflater = undefined;
  }
}

/**
 * The compression of one connection with the `agreed` parameters.
 *
 * @example
 * ```ts
 * import { createMessageDeflate, negotiatePerMessageDeflate } from "@ffinet/ffinet/websocket";
 * const deflate = createMessageDeflate(negotiatePerMessageDeflate("permessage-deflate")!);
 * deflate.close();
 * ```
 */
export function createMessageDeflate(agreed: DeflateAgreement): MessageDeflate {
  return new ConnectionDeflate(agreed);
}
