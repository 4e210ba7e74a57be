/**
 * PROXY protocol v2 type-length-value fields: the registered types, the SSL
 * sub-fields, and CRC32C (Castagnoli, as RFC 4960 appendix B) over a header.
 * Pure code over bytes; {@linkcode ProxyHeaderParser} uses it.
 *
 * @module
 */

/**
 * Registered v2 TLV types (`PP2_TYPE_*`, `PP2_SUBTYPE_SSL_*`).
 *
 * @example
 * ```ts
 * import { PP2_TYPE } from "@ffinet/ffinet/reactor";
 * PP2_TYPE.AUTHORITY; // 0x02
 * ```
 */
export const PP2_TYPE = {
  /** Application-Layer Protocol Negotiation, e.g. `h2`. */
  ALPN: 0x01,
  /** The host name the client asked for (the TLS SNI when TLS was used). */
  AUTHORITY: 0x02,
  /** CRC32C of the whole header. */
  CRC32C: 0x03,
  /** Padding, ignored. */
  NOOP: 0x04,
  /** An opaque connection id of up to 128 bytes. */
  UNIQUE_ID: 0x05,
  /** TLS details: client flags, verify result, then sub-TLVs. */
  SSL: 0x20,
  /** Sub-TLV of SSL: the TLS version, e.g. `TLSv1.3`. */
  SSL_VERSION: 0x21,
  /** Sub-TLV of SSL: the client certificate's Common Name. */
  SSL_CN: 0x22,
  /** Sub-TLV of SSL: the cipher name. */
  SSL_CIPHER: 0x23,
  /** Sub-TLV of SSL: the signature algorithm of the frontend's certificate. */
  SSL_SIG_ALG: 0x24,
  /** Sub-TLV of SSL: the key algorithm of the frontend's certificate. */
  SSL_KEY_ALG: 0x25,
  /** The network namespace's name. */
  NETNS: 0x30,
} as const;

/** One TLV: its type and its value (a view into the parser's own copy of the header). */
export interface ProxyTlv {
  /** The type byte. */
  type: number;
  /** The value bytes. */
  value: Uint8Array;
}

/** What the `PP2_TYPE_SSL` field says about the client's TLS connection to the proxy. */
export interface ProxySslInfo {
  /** The raw `client` bit field. */
  client: number;
  /** `PP2_CLIENT_SSL`: the client connected over TLS. */
  tls: boolean;
  /** `PP2_CLIENT_CERT_CONN`: a client certificate was presented on this connection. */
  certConnection: boolean;
  /** `PP2_CLIENT_CERT_SESS`: a client certificate was presented in this TLS session. */
  certSession: boolean;
  /**
   * The raw `verify` field: 0 when the proxy found nothing wrong. HAProxy
   * also leaves it 0 for a client that sent no certificate at all.
   */
  verify: number;
  /**
   * A client certificate was presented (`certConnection` or `certSession`)
   * and verified (`verify === 0`). Never true for an anonymous client, so
   * an app may gate mutual TLS on it.
   */
  verified: boolean;
  /** `PP2_SUBTYPE_SSL_VERSION`, e.g. `"TLSv1.3"`. */
  version?: string;
  /** `PP2_SUBTYPE_SSL_CN`: the client certificate's Common Name. */
  cn?: string;
  /** `PP2_SUBTYPE_SSL_CIPHER`, e.g. `"TLS_AES_256_GCM_SHA384"`. */
  cipher?: string;
  /** `PP2_SUBTYPE_SSL_SIG_ALG`. */
  sigAlg?: string;
  /** `PP2_SUBTYPE_SSL_KEY_ALG`. */
  keyAlg?: string;
  /** Every sub-TLV, in order. */
  tlvs: ProxyTlv[];
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC32C (Castagnoli) of `bytes`, as the `PP2_TYPE_CRC32C` field carries it.
 *
 * @example
 * ```ts
 * import { crc32c } from "@ffinet/ffinet/reactor";
 * crc32c(new TextEncoder().encode("123456789")); // 0xe3069283
 * ```
 */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) {
    c = CRC32C_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Split `bytes[start, end)` into TLVs, strictly: a field that does not fit
 * is an error. Returns the TLVs, or a reason string.
 *
 * @example
 * ```ts
 * import { splitTlvs } from "./tlv.ts";
 * splitTlvs(new Uint8Array([1, 0, 2, 0x68, 0x32]), 0, 5); // [{ type: 1, value: "h2" bytes }]
 * splitTlvs(new Uint8Array([1, 0, 9]), 0, 3); // "TLV 0x1 at byte 0 claims 9 bytes, 0 are left"
 * ```
 */
export function splitTlvs(bytes: Uint8Array, start: number, end: number): ProxyTlv[] | string {
  const out: ProxyTlv[] = [];
  let p = start;
  while (p < end) {
    if (end - p < 3) return `a TLV header at byte ${p} is cut off (${end - p} of 3 bytes)`;
    const type = bytes[p]!;
    const len = (bytes[p + 1]! << 8) | bytes[p + 2]!;
    if (p + 3 + len > end) {
      return `TLV 0x${type.toString(16)} at byte ${p} claims ${len} bytes, ${end - p - 3} are left`;
    }
    out.push({ type, value: bytes.subarray(p + 3, p + 3 + len) });
    p += 3 + len;
  }
  return out;
}

const ascii = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decode a UTF-8 TLV value, or return null when it is not UTF-8.
 *
 * @example
 * ```ts
 * import { utf8Value } from "./tlv.ts";
 * utf8Value(new Uint8Array([0xc3, 0x28])); // null
 * ```
 */
export function utf8Value(value: Uint8Array): string | null {
  try {
    return utf8.decode(value);
  } catch {
    return null;
  }
}

/**
 * Decode the `PP2_TYPE_SSL` value, or return a reason string.
 *
 * @example
 * ```ts
 * import { decodeSsl } from "./tlv.ts";
 * const ssl = decodeSsl(new Uint8Array([1, 0, 0, 0, 0]));
 * if (typeof ssl !== "string") ssl.tls; // true
 * ```
 */
export function decodeSsl(value: Uint8Array): ProxySslInfo | string {
  if (value.length < 5) return `the SSL TLV has ${value.length} bytes, at least 5 are needed`;
  const client = value[0]!;
  const verify = ((value[1]! << 24) | (value[2]! << 16) | (value[3]! << 8) | value[4]!) >>> 0;
  const tlvs = splitTlvs(value, 5, value.length);
  if (typeof tlvs === "string") return `in the SSL TLV, ${tlvs}`;
  const info: ProxySslInfo = {
    client,
    tls: (client & 0x01) !== 0,
    certConnection: (client & 0x02) !== 0,
    certSession: (client & 0x04) !== 0,
    verify,
    // verify 0 alone also describes a client without a certificate.
    verified: verify === 0 && (client & 0x06) !== 0,
    tlvs,
  };
  for (const t of tlvs) {
    switch (t.type) {
      case PP2_TYPE.SSL_VERSION:
        info.version = ascii.decode(t.value);
        break;
      case PP2_TYPE.SSL_CN: {
        const cn = utf8Value(t.value);
        if (cn === null) return "the SSL CN sub-TLV is not UTF-8";
        info.cn = cn;
        break;
      }
      case PP2_TYPE.SSL_CIPHER:
        info.cipher = ascii.decode(t.value);
        break;
      case PP2_TYPE.SSL_SIG_ALG:
        info.sigAlg = ascii.decode(t.value);
        break;
      case PP2_TYPE.SSL_KEY_ALG:
        info.keyAlg = ascii.decode(t.value);
        break;
    }
  }
  return info;
}

/**
 * Decode US-ASCII (Latin-1) bytes.
 *
 * @example
 * ```ts
 * import { asciiValue } from "./tlv.ts";
 * asciiValue(new Uint8Array([0x68, 0x32])); // "h2"
 * ```
 */
export function asciiValue(value: Uint8Array): string {
  return ascii.decode(value);
}
