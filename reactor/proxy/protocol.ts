/**
 * The PROXY protocol (HAProxy's `doc/proxy-protocol.txt`, versions 1 and 2),
 * read strictly and incrementally: {@linkcode ProxyHeaderParser} is fed the
 * bytes of a connection as they arrive, chunk by chunk or byte by byte, and
 * answers "need more", "here is the header (and the bytes after it)" or
 * throws a {@linkcode ProxyProtocolError}. Bytes are checked as soon as they
 * arrive, so a wrong first byte is refused at once instead of after a
 * timeout.
 *
 * Pure code over bytes: no socket, no timer. The listener side
 * (`gate.ts`) drives it.
 *
 * @module
 */
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../../ffi/inet.ts";
import type { SocketAddress } from "../../ffi/sockaddr.ts";
import {
  asciiValue,
  crc32c,
  decodeSsl,
  PP2_TYPE,
  type ProxySslInfo,
  type ProxyTlv,
  splitTlvs,
  utf8Value,
} from "./tlv.ts";

export { crc32c, PP2_TYPE, type ProxySslInfo, type ProxyTlv } from "./tlv.ts";

/** Which header versions a receiver accepts. */
export type ProxyProtocolVersion = "v1" | "v2" | "any";

/** A parsed PROXY protocol header. */
export interface ProxyHeader {
  /** 1 (text) or 2 (binary). */
  version: 1 | 2;
  /**
   * `"proxy"`: relayed for a client; `"local"`: the proxy's own connection
   * (v2 LOCAL, e.g. a health check): use the socket's real addresses.
   */
  command: "proxy" | "local";
  /** The client's address family; `"unspec"` for v1 `UNKNOWN`, v2 `AF_UNSPEC` and LOCAL. */
  family: "inet" | "inet6" | "unix" | "unspec";
  /** The client's transport (v1 is always `"stream"`, `"unspec"` for UNKNOWN). */
  transport: "stream" | "dgram" | "unspec";
  /** The client's address, when the header carries one. */
  source?: SocketAddress;
  /** The address the client connected to, when the header carries one. */
  destination?: SocketAddress;
  /** Every v2 TLV, in order (empty for v1). */
  tlvs: ProxyTlv[];
  /** `PP2_TYPE_ALPN`, e.g. `"h2"`. */
  alpn?: string;
  /** `PP2_TYPE_AUTHORITY`: the host name the client asked for (SNI under TLS). */
  authority?: string;
  /** `PP2_TYPE_UNIQUE_ID`. */
  uniqueId?: Uint8Array;
  /** `PP2_TYPE_NETNS`. */
  netns?: string;
  /** `PP2_TYPE_SSL`: whether and how the client used TLS. */
  ssl?: ProxySslInfo;
  /** True when a `PP2_TYPE_CRC32C` field was present (and matched: a mismatch is an error). */
  crc32c: boolean;
  /** Header length in bytes. */
  length: number;
}

/**
 * A connection's PROXY protocol details, as listeners attach them to
 * `Connection.proxyInfo`: the header, plus the proxy's own address (the
 * socket's real peer).
 */
export interface ProxyInfo extends ProxyHeader {
  /** The proxy's address: the socket's real peer. */
  proxyAddress: SocketAddress;
}

/** Why a header was refused. */
export type ProxyProtocolErrorKind =
  | "signature"
  | "version"
  | "command"
  | "family"
  | "length"
  | "address"
  | "port"
  | "line"
  | "tlv"
  | "crc";

/**
 * A header that breaks the protocol. `kind` says which part.
 *
 * @example
 * ```ts
 * import { ProxyHeaderParser, ProxyProtocolError } from "@ffinet/ffinet/reactor";
 * try {
 *   new ProxyHeaderParser().push(new TextEncoder().encode("GET / HTTP/1.1\r\n"));
 * } catch (e) {
 *   if (e instanceof ProxyProtocolError) console.log(e.kind); // "signature"
 * }
 * ```
 */
export class ProxyProtocolError extends Error {
  /** Which part of the header is wrong. */
  readonly kind: ProxyProtocolErrorKind;
  /** Build one; the message reads `Cannot read PROXY header: <reason>`. */
  constructor(kind: ProxyProtocolErrorKind, reason: string) {
    super(`Cannot read PROXY header: ${reason}`);
    this.name = "ProxyProtocolError";
    this.kind = kind;
  }
}

/** Options for {@linkcode ProxyHeaderParser}. */
export interface ProxyParserOptions {
  /** Accepted versions. Default `"any"`. */
  version?: ProxyProtocolVersion;
  /** Longest v2 header accepted (16 + address and TLV bytes), 232–65551. Default 2048. */
  maxHeaderBytes?: number;
}

/**
 * The v2 signature, 12 bytes.
 *
 * @example
 * ```ts
 * import { PROXY_V2_SIGNATURE } from "./protocol.ts";
 * PROXY_V2_SIGNATURE.length; // 12
 * ```
 */
export const PROXY_V2_SIGNATURE: Uint8Array = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);
/**
 * The longest v1 line the spec allows, CRLF included.
 *
 * @example
 * ```ts
 * import { PROXY_V1_MAX_LENGTH } from "./protocol.ts";
 * PROXY_V1_MAX_LENGTH; // 107
 * ```
 */
export const PROXY_V1_MAX_LENGTH = 107;
const V1_PREFIX = new TextEncoder().encode("PROXY ");
const ADDRESS_BYTES = [0, 12, 36, 216] as const;

/**
 * Validate {@linkcode ProxyParserOptions}; throws `RangeError`/`TypeError`
 * naming the option.
 *
 * @example
 * ```ts
 * import { checkProxyParserOptions } from "./protocol.ts";
 * checkProxyParserOptions({ version: "v2", maxHeaderBytes: 1024 });
 * ```
 */
export function checkProxyParserOptions(options: ProxyParserOptions): void {
  const v = options.version;
  if (v !== undefined && v !== "v1" && v !== "v2" && v !== "any") {
    throw new TypeError(
      `Cannot use proxyProtocol.version ${JSON.stringify(v)}: expected "v1", "v2" or "any"`,
    );
  }
  const m = options.maxHeaderBytes;
  if (m !== undefined && (!Number.isInteger(m) || m < 232 || m > 65551)) {
    throw new RangeError(
      `Cannot use proxyProtocol.maxHeaderBytes ${m}: expected an integer in 232-65551`,
    );
  }
}

/**
 * An incremental, strict PROXY header reader for one connection.
 *
 * `push(chunk)` returns `null` while the header is incomplete, the header
 * once it is complete (then {@linkcode ProxyHeaderParser.rest} holds the
 * bytes of that chunk that follow it: application data), and throws
 * {@linkcode ProxyProtocolError} as soon as a byte cannot belong to a valid
 * header. After the header (or an error) the parser accepts nothing more.
 *
 * @example
 * ```ts
 * import { ProxyHeaderParser } from "@ffinet/ffinet/reactor";
 * const p = new ProxyHeaderParser({ version: "v1" });
 * const bytes = new TextEncoder().encode("PROXY TCP4 192.0.2.1 192.0.2.2 5555 80\r\nGET /");
 * p.push(bytes.subarray(0, 10)); // null: need more
 * const h = p.push(bytes.subarray(10))!;
 * h.source; // { family: "inet", address: "192.0.2.1", port: 5555 }
 * p.rest; // the bytes of "GET /"
 * ```
 */
export class ProxyHeaderParser {
  readonly #version: ProxyProtocolVersion;
  readonly #max: number;
  #buf = new Uint8Array(PROXY_V1_MAX_LENGTH + 1);
  #have = 0;
  #need = 16; // v2: bytes needed for the next step
  #mode: 0 | 1 | 2 = 0; // 0: undecided, 1: v1, 2: v2
  #done = false;
  #rest: Uint8Array = new Uint8Array(0);

  /** Make a parser; options are validated at once. */
  constructor(options: ProxyParserOptions = {}) {
    checkProxyParserOptions(options);
    this.#version = options.version ?? "any";
    this.#max = options.maxHeaderBytes ?? 2048;
  }

  /** Header bytes taken so far. */
  get received(): number {
    return this.#have;
  }

  /** After a complete header: the bytes of the last chunk that follow it (a view into that chunk). */
  get rest(): Uint8Array {
    return this.#rest;
  }

  /**
   * Feed the next bytes. Returns the header once complete, else `null`.
   *
   * @example
   * ```ts
   * import { ProxyHeaderParser } from "@ffinet/ffinet/reactor";
   * new ProxyHeaderParser().push(new TextEncoder().encode("PROXY UNKNOWN\r\n"))?.family; // "unspec"
   * ```
   */
  push(chunk: Uint8Array): ProxyHeader | null {
    if (this.#done) throw new Error("Cannot push to a PROXY header parser: it has finished");
    try {
      return this.#push(chunk);
    } catch (e) {
      this.#done = true;
      throw e;
    }
  }

  #push(chunk: Uint8Array): ProxyHeader | null {
    let i = 0;
    if (this.#mode === 0 && chunk.length > 0) {
      const b = chunk[0]!;
      if (b === 0x0d && this.#version !== "v1") this.#mode = 2;
      else if (b === 0x50 && this.#version !== "v2") this.#mode = 1;
      else {
        const want = this.#version === "v1"
          ? "PROXY"
          : this.#version === "v2"
          ? "the v2 signature"
          : '"PROXY" or the v2 signature';
        throw new ProxyProtocolError(
          "signature",
          `the connection does not start with ${want} (first byte 0x${b.toString(16)})`,
        );
      }
    }
    if (this.#mode === 1) {
      for (; i < chunk.length; i++) {
        const b = chunk[i]!;
        const at = this.#have;
        this.#checkV1Byte(b, at);
        this.#buf[this.#have++] = b;
        if (b === 0x0a) {
          this.#finish(chunk, i + 1);
          return decodeV1(this.#buf.subarray(0, this.#have));
        }
      }
      return null;
    }
    if (this.#mode === 2) {
      while (i < chunk.length) {
        const take = Math.min(this.#need - this.#have, chunk.length - i);
        if (this.#have < 16) {
          for (let k = 0; k < take; k++) this.#checkV2Byte(chunk[i + k]!, this.#have + k);
        }
        this.#buf.set(chunk.subarray(i, i + take), this.#have);
        this.#have += take;
        i += take;
        if (this.#have < this.#need) return null;
        if (this.#need === 16) {
          const len = (this.#buf[14]! << 8) | this.#buf[15]!;
          const total = 16 + len;
          if (total > this.#max) {
            throw new ProxyProtocolError(
              "length",
              `the v2 header claims ${total} bytes, the limit is ${this.#max}`,
            );
          }
          const head = this.#buf.subarray(0, 16);
          this.#buf = new Uint8Array(total);
          this.#buf.set(head);
          this.#need = total;
          if (total > 16) continue;
        }
        this.#finish(chunk, i);
        return decodeV2(this.#buf);
      }
    }
    return null;
  }

  #finish(chunk: Uint8Array, end: number): void {
    this.#done = true;
    this.#rest = chunk.subarray(end);
  }

  #checkV1Byte(b: number, at: number): void {
    if (at < V1_PREFIX.length) {
      if (b !== V1_PREFIX[at]) {
        throw new ProxyProtocolError("signature", `byte ${at} of the v1 line is not "PROXY "`);
      }
      return;
    }
    const prev = this.#buf[at - 1];
    if (prev === 0x0d && b !== 0x0a) {
      throw new ProxyProtocolError("line", "a CR in the v1 line is not followed by LF");
    }
    if (b === 0x0a && prev !== 0x0d) {
      throw new ProxyProtocolError("line", "the v1 line ends with a bare LF");
    }
    if (b !== 0x0d && b !== 0x0a && (b < 0x20 || b > 0x7e)) {
      throw new ProxyProtocolError(
        "line",
        `the v1 line holds a byte that is not printable ASCII (0x${b.toString(16)})`,
      );
    }
    if (at >= PROXY_V1_MAX_LENGTH || (at === PROXY_V1_MAX_LENGTH - 1 && b !== 0x0a)) {
      throw new ProxyProtocolError(
        "length",
        `no CRLF in the first ${PROXY_V1_MAX_LENGTH} bytes of the v1 line`,
      );
    }
  }

  #checkV2Byte(b: number, at: number): void {
    if (at < 12) {
      if (b !== PROXY_V2_SIGNATURE[at]) {
        throw new ProxyProtocolError("signature", `byte ${at} of the v2 signature is wrong`);
      }
    } else if (at === 12) {
      if (b >> 4 !== 2) {
        throw new ProxyProtocolError("version", `v2 header with version nibble ${b >> 4}, not 2`);
      }
      if ((b & 0xf) > 1) {
        throw new ProxyProtocolError("command", `unknown v2 command ${b & 0xf}`);
      }
    } else if (at === 13) {
      if (b >> 4 > 3) {
        throw new ProxyProtocolError("family", `unknown v2 address family ${b >> 4}`);
      }
      if ((b & 0xf) > 2) {
        throw new ProxyProtocolError("family", `unknown v2 transport protocol ${b & 0xf}`);
      }
    }
  }
}

/**
 * Parse a complete header at the start of `bytes` (one shot). Throws
 * {@linkcode ProxyProtocolError} when it is malformed or incomplete.
 *
 * @example
 * ```ts
 * import { parseProxyHeader } from "@ffinet/ffinet/reactor";
 * const { header, rest } = parseProxyHeader(
 *   new TextEncoder().encode("PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\nhi"),
 * );
 * header.source; // { family: "inet6", address: "2001:db8::1", port: 4000 }
 * rest.length; // 2
 * ```
 */
export function parseProxyHeader(
  bytes: Uint8Array,
  options: ProxyParserOptions = {},
): { header: ProxyHeader; rest: Uint8Array } {
  const p = new ProxyHeaderParser(options);
  const header = p.push(bytes);
  if (header === null) {
    throw new ProxyProtocolError("length", `the header is truncated (${bytes.length} bytes)`);
  }
  return { header, rest: p.rest };
}

const PORT_RE = /^(0|[1-9][0-9]{0,4})$/;

function v1Port(text: string | undefined, what: string): number {
  if (text === undefined || !PORT_RE.test(text) || Number(text) > 65535) {
    throw new ProxyProtocolError("port", `bad v1 ${what} port ${JSON.stringify(text ?? "")}`);
  }
  return Number(text);
}

function v1Address(text: string | undefined, v6: boolean, what: string): string {
  const bytes = text === undefined ? null : v6
    // hex groups; a dotted IPv4 tail (`::ffff:192.0.2.1`) is what senders
    // such as HAProxy write for an IPv4 client on a dual-stack frontend
    ? (/^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*$/.test(text) ? parseIPv6(text) : null)
    : parseIPv4(text);
  if (bytes === null) {
    throw new ProxyProtocolError(
      "address",
      `bad v1 ${what} address ${JSON.stringify(text ?? "")} for ${v6 ? "TCP6" : "TCP4"}`,
    );
  }
  return v6 ? formatIPv6(bytes) : formatIPv4(bytes);
}

function decodeV1(line: Uint8Array): ProxyHeader {
  const text = asciiValue(line.subarray(0, line.length - 2));
  const fields = text.split(" ");
  const proto = fields[1];
  if (proto === "UNKNOWN") {
    return {
      version: 1,
      command: "proxy",
      family: "unspec",
      transport: "unspec",
      tlvs: [],
      crc32c: false,
      length: line.length,
    };
  }
  if (proto !== "TCP4" && proto !== "TCP6") {
    throw new ProxyProtocolError(
      "family",
      `v1 protocol ${JSON.stringify(proto ?? "")} is not TCP4, TCP6 or UNKNOWN`,
    );
  }
  if (fields.length !== 6) {
    throw new ProxyProtocolError("line", `the v1 line has ${fields.length} fields, not 6`);
  }
  const v6 = proto === "TCP6";
  const family = v6 ? "inet6" : "inet";
  const src = v1Address(fields[2], v6, "source");
  const dst = v1Address(fields[3], v6, "destination");
  const sport = v1Port(fields[4], "source");
  const dport = v1Port(fields[5], "destination");
  return {
    version: 1,
    command: "proxy",
    family,
    transport: "stream",
    source: { family, address: src, port: sport },
    destination: { family, address: dst, port: dport },
    tlvs: [],
    crc32c: false,
    length: line.length,
  } as ProxyHeader;
}

function unixPath(bytes: Uint8Array, offset: number): string {
  const raw = bytes.subarray(offset, offset + 108);
  if (raw[0] === 0) {
    // abstract name: a leading NUL, then the name up to the trailing NUL padding
    let end = raw.length;
    while (end > 1 && raw[end - 1] === 0) end--;
    return end <= 1 ? "" : "\0" + asciiValue(raw.subarray(1, end));
  }
  let end = 0;
  while (end < raw.length && raw[end] !== 0) end++;
  return utf8Value(raw.subarray(0, end)) ?? asciiValue(raw.subarray(0, end));
}

function decodeV2(h: Uint8Array): ProxyHeader {
  const command = (h[12]! & 0xf) === 0 ? "local" : "proxy";
  const fam = h[13]! >> 4;
  const proto = h[13]! & 0xf;
  const len = h.length - 16;
  const addrBytes = ADDRESS_BYTES[fam as 0 | 1 | 2 | 3];
  const header: ProxyHeader = {
    version: 2,
    command,
    family: command === "local" ? "unspec" : (["unspec", "inet", "inet6", "unix"] as const)[fam]!,
    transport: command === "local" ? "unspec" : (["unspec", "stream", "dgram"] as const)[proto]!,
    tlvs: [],
    crc32c: false,
    length: h.length,
  };
  if (len < addrBytes) {
    // LOCAL ignores the address block entirely; PROXY needs it whole.
    if (command === "local") return header;
    throw new ProxyProtocolError(
      "length",
      `a v2 ${header.family} address block needs ${addrBytes} bytes, the header has ${len}`,
    );
  }
  if (command === "proxy") {
    const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
    if (fam === 1) {
      header.source = { family: "inet", address: formatIPv4(h, 16), port: dv.getUint16(24) };
      header.destination = { family: "inet", address: formatIPv4(h, 20), port: dv.getUint16(26) };
    } else if (fam === 2) {
      header.source = { family: "inet6", address: formatIPv6(h, 16), port: dv.getUint16(48) };
      header.destination = {
        family: "inet6",
        address: formatIPv6(h, 32),
        port: dv.getUint16(50),
      };
    } else if (fam === 3) {
      header.source = { family: "unix", path: unixPath(h, 16) };
      header.destination = { family: "unix", path: unixPath(h, 124) };
    }
  }
  const tlvs = splitTlvs(h, 16 + addrBytes, h.length);
  if (typeof tlvs === "string") throw new ProxyProtocolError("tlv", tlvs);
  header.tlvs = tlvs;
  for (const t of tlvs) {
    switch (t.type) {
      case PP2_TYPE.ALPN:
        header.alpn = asciiValue(t.value);
        break;
      case PP2_TYPE.AUTHORITY: {
        const a = utf8Value(t.value);
        if (a === null) throw new ProxyProtocolError("tlv", "the AUTHORITY TLV is not UTF-8");
        header.authority = a;
        break;
      }
      case PP2_TYPE.CRC32C:
        checkCrc(h, t, header);
        break;
      case PP2_TYPE.UNIQUE_ID:
        if (t.value.length > 128) {
          throw new ProxyProtocolError(
            "tlv",
            `the UNIQUE_ID TLV has ${t.value.length} bytes, at most 128 are allowed`,
          );
        }
        header.uniqueId = t.value;
        break;
      case PP2_TYPE.SSL: {
        const ssl = decodeSsl(t.value);
        if (typeof ssl === "string") throw new ProxyProtocolError("tlv", ssl);
        header.ssl = ssl;
        break;
      }
      case PP2_TYPE.NETNS:
        header.netns = asciiValue(t.value);
        break;
    }
  }
  return header;
}

function checkCrc(h: Uint8Array, t: ProxyTlv, header: ProxyHeader): void {
  if (header.crc32c) throw new ProxyProtocolError("tlv", "two CRC32C TLVs");
  if (t.value.length !== 4) {
    throw new ProxyProtocolError("tlv", `the CRC32C TLV has ${t.value.length} bytes, not 4`);
  }
  const v = t.value;
  const sent = ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0;
  const copy = h.slice();
  copy.fill(0, v.byteOffset - h.byteOffset, v.byteOffset - h.byteOffset + 4);
  const got = crc32c(copy);
  if (got !== sent) {
    throw new ProxyProtocolError(
      "crc",
      `CRC32C mismatch: the header says 0x${sent.toString(16)}, its bytes give 0x${
        got.toString(16)
      }`,
    );
  }
  header.crc32c = true;
}
