/**
 * Byte order and IP address text, in TypeScript, agreeing with libc's
 * `htons`/`htonl` and `inet_pton`/`inet_ntop` (the tests check them against
 * libc itself).
 *
 * @module
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Host to network byte order, 16 bits.
 *
 * @example
 * ```ts
 * import { htons } from "@ffinet/ffinet/ffi";
 * htons(0x1234); // 0x3412 on little-endian hosts
 * ```
 */
export function htons(x: number): number {
  return LITTLE_ENDIAN ? ((x & 0xff) << 8) | ((x >>> 8) & 0xff) : x & 0xffff;
}

/**
 * Network to host byte order, 16 bits.
 *
 * @example
 * ```ts
 * import { ntohs } from "@ffinet/ffinet/ffi";
 * ntohs(0x3412); // 0x1234 on little-endian hosts
 * ```
 */
export function ntohs(x: number): number {
  return htons(x);
}

/**
 * Host to network byte order, 32 bits (unsigned result).
 *
 * @example
 * ```ts
 * import { htonl } from "@ffinet/ffinet/ffi";
 * htonl(0x7f000001); // 0x0100007f on little-endian hosts
 * ```
 */
export function htonl(x: number): number {
  if (!LITTLE_ENDIAN) return x >>> 0;
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) |
    ((x >>> 24) & 0xff)) >>> 0;
}

/**
 * Network to host byte order, 32 bits (unsigned result).
 *
 * @example
 * ```ts
 * import { ntohl } from "@ffinet/ffinet/ffi";
 * ntohl(0x0100007f); // 0x7f000001 on little-endian hosts
 * ```
 */
export function ntohl(x: number): number {
  return htonl(x);
}

/**
 * Parse dotted-quad IPv4 text into 4 bytes, as strictly as `inet_pton`
 * (exactly four decimal parts 0–255, no leading zeros). Returns `null` when
 * the text is not an IPv4 address.
 *
 * @example
 * ```ts
 * import { parseIPv4 } from "@ffinet/ffinet/ffi";
 * parseIPv4("127.0.0.1"); // Uint8Array [127, 0, 0, 1]
 * parseIPv4("1.2.3"); // null
 * ```
 */
export function parseIPv4(text: string): Uint8Array | null {
  const out = new Uint8Array(4);
  let part = 0, value = 0, digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return null; // leading zero
      value = value * 10 + (c - 48);
      if (value > 255) return null;
      digits++;
    } else if (c === 46) {
      if (digits === 0 || part === 3) return null;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else {
      return null;
    }
  }
  if (digits === 0 || part !== 3) return null;
  out[3] = value;
  return out;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parse IPv6 text (with `::` compression and an optional trailing dotted
 * IPv4 part) into 16 bytes, as `inet_pton(AF_INET6)` does. No zone index
 * (`%eth0`): pass the scope id separately. Returns `null` when invalid.
 *
 * @example
 * ```ts
 * import { parseIPv6 } from "@ffinet/ffinet/ffi";
 * parseIPv6("::1"); // 15 zero bytes then 1
 * parseIPv6("1:::2"); // null
 * ```
 */
export function parseIPv6(text: string): Uint8Array | null {
  const out = new Uint8Array(16);
  let pos = 0; // byte position in out
  let gap = -1; // byte position of "::"
  let i = 0;
  const n = text.length;
  if (n === 0) return null;
  if (text.charCodeAt(0) === 58) {
    if (n < 2 || text.charCodeAt(1) !== 58) return null;
  }
  let groupStart = 0;
  let afterGroup = false; // the last token was a hex group, not a colon
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 58) {
      if (i + 1 < n && text.charCodeAt(i + 1) === 58) {
        if (gap >= 0) return null;
        gap = pos;
        afterGroup = false;
        i += 2;
        groupStart = i;
        if (i === n) break;
        continue;
      }
      if (!afterGroup) return null; // ":" must follow a group (rejects ":::")
      afterGroup = false;
      i++;
      groupStart = i;
      if (i === n) return null; // trailing single colon
      continue;
    }
    // a group: hex digits, or the dotted IPv4 tail
    let j = i, value = 0;
    while (j < n && j - i < 5) {
      const h = hexValue(text.charCodeAt(j));
      if (h < 0) break;
      value = (value << 4) | h;
      j++;
    }
    if (j < n && text.charCodeAt(j) === 46) {
      if (pos > 12) return null;
      const v4 = parseIPv4(text.slice(groupStart));
      if (v4 === null) return null;
      out.set(v4, pos);
      pos += 4;
      i = n;
      break;
    }
    if (j === i || j - i > 4) return null;
    if (j < n && text.charCodeAt(j) !== 58) return null;
    if (pos > 14) return null;
    out[pos++] = value >>> 8;
    out[pos++] = value & 0xff;
    afterGroup = true;
    i = j;
  }
  if (gap >= 0) {
    if (pos === 16) return null; // "::" must stand for at least one group
    const tail = pos - gap;
    out.copyWithin(16 - tail, gap, pos);
    out.fill(0, gap, 16 - tail);
  } else if (pos !== 16) {
    return null;
  }
  return out;
}

/**
 * Format 4 bytes as dotted-quad IPv4 text.
 *
 * @example
 * ```ts
 * import { formatIPv4 } from "@ffinet/ffinet/ffi";
 * formatIPv4(new Uint8Array([10, 0, 0, 1])); // "10.0.0.1"
 * ```
 */
export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/**
 * Format 16 bytes as IPv6 text exactly as glibc's `inet_ntop` does: lowercase,
 * the longest run of two or more zero groups compressed to `::`, and an
 * IPv4-mapped or IPv4-compatible address written with a dotted tail.
 *
 * @example
 * ```ts
 * import { formatIPv6, parseIPv6 } from "@ffinet/ffinet/ffi";
 * formatIPv6(parseIPv6("0:0:0:0:0:ffff:7f00:1")!); // "::ffff:127.0.0.1"
 * ```
 */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const words: number[] = [];
  for (let k = 0; k < 8; k++) {
    words.push((bytes[offset + 2 * k]! << 8) | bytes[offset + 2 * k + 1]!);
  }
  let bestBase = -1, bestLen = 0, curBase = -1, curLen = 0;
  for (let k = 0; k < 8; k++) {
    if (words[k] === 0) {
      if (curBase < 0) {
        curBase = k;
        curLen = 1;
      } else {
        curLen++;
      }
    } else if (curBase >= 0) {
      if (bestBase < 0 || curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (curBase >= 0 && (bestBase < 0 || curLen > bestLen)) {
    bestBase = curBase;
    bestLen = curLen;
  }
  if (bestBase >= 0 && bestLen < 2) bestBase = -1;
  let s = "";
  for (let k = 0; k < 8; k++) {
    if (bestBase >= 0 && k >= bestBase && k < bestBase + bestLen) {
      if (k === bestBase) s += ":";
      continue;
    }
    if (k !== 0) s += ":";
    if (
      k === 6 && bestBase === 0 &&
      (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))
    ) {
      s += formatIPv4(bytes, offset + 12);
      break;
    }
    s += words[k]!.toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) s += ":";
  return s;
}
