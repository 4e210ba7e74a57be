/**
 * Which peers may send a PROXY header: a list of CIDR blocks (IPv4 and
 * IPv6), plus `"unix"` for peers on a Unix-socket listener. An IPv4 peer on
 * a dual-stack listener (`::ffff:a.b.c.d`) matches the IPv4 blocks.
 *
 * @module
 */
import { parseIPv4, parseIPv6 } from "../../ffi/inet.ts";
import type { SocketAddress } from "../../ffi/sockaddr.ts";

interface Block {
  bytes: Uint8Array;
  bits: number;
}

/**
 * A parsed trust list.
 *
 * @example
 * ```ts
 * import { TrustList } from "./trust.ts";
 * const t = new TrustList(["10.0.0.0/8", "::1"]);
 * t.trusts({ family: "inet", address: "10.1.2.3", port: 80 }); // true
 * t.trusts({ family: "inet6", address: "::ffff:10.1.2.3", port: 80 }); // true
 * t.trusts({ family: "inet", address: "192.0.2.1", port: 80 }); // false
 * ```
 */
export class TrustList {
  readonly #v4: Block[] = [];
  readonly #v6: Block[] = [];
  readonly #unix: boolean;

  /**
   * Parse `entries` (`"a.b.c.d/n"`, `"x::y/n"`, a bare address, or `"unix"`).
   * Throws `TypeError`/`RangeError` naming the entry.
   */
  constructor(entries: readonly string[]) {
    if (!Array.isArray(entries)) {
      throw new TypeError("Cannot use proxyProtocol.trusted: expected an array of CIDR strings");
    }
    let unix = false;
    for (const entry of entries) {
      if (typeof entry !== "string") {
        throw new TypeError(
          `Cannot use proxyProtocol.trusted entry ${String(entry)}: not a string`,
        );
      }
      if (entry === "unix") {
        unix = true;
        continue;
      }
      const slash = entry.indexOf("/");
      const addr = slash < 0 ? entry : entry.slice(0, slash);
      const v4 = parseIPv4(addr);
      const bytes = v4 ?? parseIPv6(addr);
      if (bytes === null) {
        throw new TypeError(
          `Cannot use proxyProtocol.trusted entry "${entry}": not an IPv4/IPv6 address or CIDR`,
        );
      }
      const max = bytes.length * 8;
      const bitsText = slash < 0 ? String(max) : entry.slice(slash + 1);
      const bits = /^(0|[1-9][0-9]{0,2})$/.test(bitsText) ? Number(bitsText) : NaN;
      if (!(bits >= 0 && bits <= max)) {
        throw new RangeError(
          `Cannot use proxyProtocol.trusted entry "${entry}": prefix length must be 0-${max}`,
        );
      }
      (v4 ? this.#v4 : this.#v6).push({ bytes, bits });
    }
    this.#unix = unix;
  }

  /**
   * Whether `peer` may send a PROXY header.
   *
   * @example
   * ```ts
   * import { TrustList } from "./trust.ts";
   * new TrustList(["unix"]).trusts({ family: "unix", path: "" }); // true
   * ```
   */
  trusts(peer: SocketAddress): boolean {
    if (peer.family === "unix") return this.#unix;
    if (peer.family === "inet") {
      const b = parseIPv4(peer.address);
      return b !== null && matchAny(this.#v4, b);
    }
    const b = parseIPv6(peer.address);
    if (b === null) return false;
    if (matchAny(this.#v6, b)) return true;
    const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
    return mapped && matchAny(this.#v4, b.subarray(12));
  }
}

function matchAny(blocks: Block[], addr: Uint8Array): boolean {
  for (const { bytes, bits } of blocks) {
    let ok = true;
    let left = bits;
    for (let i = 0; left > 0; i++, left -= 8) {
      const mask = left >= 8 ? 0xff : (0xff << (8 - left)) & 0xff;
      if ((bytes[i]! & mask) !== (addr[i]! & mask)) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  return false;
}
