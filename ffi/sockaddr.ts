/**
 * Socket addresses and their C encodings: `sockaddr_in`, `sockaddr_in6` and
 * `sockaddr_un` (pathname, abstract and unnamed), read and written with a
 * `DataView` in the exact layout the kernel expects.
 *
 * @module
 */
import { AF } from "./constants.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "./inet.ts";
import { bytesOf, checkInteger, UINT32_MAX } from "./_view.ts";

/** An IPv4 address and port. */
export interface InetAddress {
  /** Always `"inet"`. */
  family: "inet";
  /** Dotted-quad text, e.g. `"127.0.0.1"`. */
  address: string;
  /** 0–65535; 0 asks the kernel to pick one. */
  port: number;
}

/** An IPv6 address and port. */
export interface Inet6Address {
  /** Always `"inet6"`. */
  family: "inet6";
  /** IPv6 text, e.g. `"::1"`. */
  address: string;
  /** 0–65535. */
  port: number;
  /** `sin6_flowinfo`, 0 unless you use flow labels. */
  flowinfo?: number;
  /** `sin6_scope_id`: the interface index for link-local addresses. */
  scopeId?: number;
}

/**
 * A Unix-domain address. A `path` that starts with `"\0"` names the Linux
 * abstract namespace; an empty path is an unnamed socket.
 *
 * Unix names are bytes, not text. When a name is not valid UTF-8,
 * {@linkcode decodeSockaddr} sets `bytes` to the exact name (and `path` to
 * a lossy reading of it, for display); {@linkcode encodeSockaddr} sends
 * `bytes` when present, so a received address used as a destination
 * reaches exactly that peer, never another one whose name reads the same.
 */
export interface UnixAddress {
  /** Always `"unix"`. */
  family: "unix";
  /** A filesystem path, `"\0name"` for the abstract namespace, or `""`. */
  path: string;
  /**
   * The exact name bytes, as `sun_path` holds them: a pathname without its
   * terminating NUL, an abstract name with its leading NUL. When present,
   * {@linkcode encodeSockaddr} uses these instead of `path`.
   */
  bytes?: Uint8Array;
}

/** Any address ffinet can bind, connect or receive from. */
export type SocketAddress = InetAddress | Inet6Address | UnixAddress;

/** `sizeof(struct sockaddr_in)`. */
export const SOCKADDR_IN_SIZE = 16;
/** `sizeof(struct sockaddr_in6)`. */
export const SOCKADDR_IN6_SIZE = 28;
/** `sizeof(struct sockaddr_un)`. */
export const SOCKADDR_UN_SIZE = 110;
/** `sizeof(struct sockaddr_storage)`: big enough for any address. */
export const SOCKADDR_STORAGE_SIZE = 128;
/** The longest pathname `sockaddr_un` holds (108 bytes with its NUL). */
export const UNIX_PATH_MAX = 107;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** The largest port number. */
const PORT_MAX = 65535;
/** `sizeof(sa_family_t)`: where every address's body starts. */
const FAMILY_SIZE = 2;
/** `sin_port` / `sin6_port` (network order). */
const PORT_OFFSET = 2;
/** `sin_addr`. */
const IN_ADDR_OFFSET = 4;
/** `sin6_flowinfo` (network order). */
const IN6_FLOWINFO_OFFSET = 4;
/** `sin6_addr`. */
const IN6_ADDR_OFFSET = 8;
/** `sin6_scope_id` (host order). */
const IN6_SCOPE_OFFSET = 24;

function checkPort(port: number): void {
  checkInteger("encode address", "port", port, 0, PORT_MAX);
}

/**
 * Encode an address into a new buffer sized exactly as its `socklen_t`.
 * Throws `TypeError` for malformed address text and `RangeError` for a port
 * outside 0–65535 or a Unix path longer than {@linkcode UNIX_PATH_MAX} bytes,
 * before any system call is made.
 *
 * @example
 * ```ts
 * import { encodeSockaddr } from "@ffinet/ffinet/ffi";
 * const sa = encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 80 });
 * sa.byteLength; // 16
 * ```
 */
export function encodeSockaddr(addr: SocketAddress): Uint8Array {
  switch (addr.family) {
    case "inet": {
      checkPort(addr.port);
      const ip = parseIPv4(addr.address);
      if (ip === null) {
        throw new TypeError(
          `Cannot encode address: "${addr.address}" is not an IPv4 address`,
        );
      }
      const buf = new Uint8Array(SOCKADDR_IN_SIZE);
      const dv = new DataView(buf.buffer);
      dv.setUint16(0, AF.INET, true);
      dv.setUint16(PORT_OFFSET, addr.port, false);
      buf.set(ip, IN_ADDR_OFFSET);
      return buf;
    }
    case "inet6": {
      checkPort(addr.port);
      const flowinfo = checkInteger(
        "encode address",
        "flowinfo",
        addr.flowinfo ?? 0,
        0,
        UINT32_MAX,
      );
      const scopeId = checkInteger("encode address", "scopeId", addr.scopeId ?? 0, 0, UINT32_MAX);
      const ip = parseIPv6(addr.address);
      if (ip === null) {
        throw new TypeError(
          `Cannot encode address: "${addr.address}" is not an IPv6 address`,
        );
      }
      const buf = new Uint8Array(SOCKADDR_IN6_SIZE);
      const dv = new DataView(buf.buffer);
      dv.setUint16(0, AF.INET6, true);
      dv.setUint16(PORT_OFFSET, addr.port, false);
      dv.setUint32(IN6_FLOWINFO_OFFSET, flowinfo, false);
      buf.set(ip, IN6_ADDR_OFFSET);
      dv.setUint32(IN6_SCOPE_OFFSET, scopeId, true);
      return buf;
    }
    case "unix": {
      const path = addr.bytes ?? encoder.encode(addr.path);
      const abstract = path.length > 0 && path[0] === 0;
      const max = abstract ? UNIX_PATH_MAX + 1 : UNIX_PATH_MAX;
      if (path.length > max) {
        throw new RangeError(
          `Cannot encode address: Unix socket path is ${path.length} bytes, the limit is ${max}`,
        );
      }
      if (!abstract && path.includes(0)) {
        throw new TypeError(
          "Cannot encode address: Unix socket path contains a NUL byte",
        );
      }
      // pathname: family + path + NUL; abstract/unnamed: family + bytes.
      const len = FAMILY_SIZE + path.length + (abstract || path.length === 0 ? 0 : 1);
      const buf = new Uint8Array(len);
      new DataView(buf.buffer).setUint16(0, AF.UNIX, true);
      buf.set(path, FAMILY_SIZE);
      return buf;
    }
    default:
      throw new TypeError(
        `Cannot encode address: unknown family "${(addr as { family: unknown }).family}"`,
      );
  }
}

/**
 * Decode a `struct sockaddr` of `length` bytes (as the kernel reported it in
 * `socklen_t`) from `buf`. A `length` beyond `buf` (the kernel reports the
 * full length of an address it truncated) is cut to `buf`'s size; a
 * negative or fractional one throws `RangeError`. A Unix name that is not
 * valid UTF-8 comes back with its exact bytes in `bytes` (a copy).
 *
 * @example
 * ```ts
 * import { decodeSockaddr, encodeSockaddr } from "@ffinet/ffinet/ffi";
 * const sa = encodeSockaddr({ family: "inet6", address: "::1", port: 8080 });
 * decodeSockaddr(sa, sa.byteLength); // { family: "inet6", address: "::1", port: 8080, ... }
 * ```
 */
export function decodeSockaddr(buf: Uint8Array, length: number): SocketAddress {
  checkInteger("decode address", "length", length, 0, UINT32_MAX);
  buf = bytesOf("decode address", "buf", buf); // the engine's own view of the caller's bytes
  if (length > buf.byteLength) length = buf.byteLength;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (length < FAMILY_SIZE) return { family: "unix", path: "" };
  const family = dv.getUint16(0, true);
  switch (family) {
    case AF.INET:
      if (length < SOCKADDR_IN_SIZE) throw shortAddress("IPv4", length);
      return {
        family: "inet",
        address: formatIPv4(buf, IN_ADDR_OFFSET),
        port: dv.getUint16(PORT_OFFSET, false),
      };
    case AF.INET6:
      if (length < SOCKADDR_IN6_SIZE) throw shortAddress("IPv6", length);
      return {
        family: "inet6",
        address: formatIPv6(buf, IN6_ADDR_OFFSET),
        port: dv.getUint16(PORT_OFFSET, false),
        flowinfo: dv.getUint32(IN6_FLOWINFO_OFFSET, false),
        scopeId: dv.getUint32(IN6_SCOPE_OFFSET, true),
      };
    case AF.UNIX: {
      // abstract: every byte after the family (the leading NUL included);
      // pathname: up to the first NUL; unnamed: none.
      let end = length;
      if (length > FAMILY_SIZE && buf[FAMILY_SIZE] !== 0) {
        end = FAMILY_SIZE;
        while (end < length && buf[end] !== 0) end++;
      }
      const name = buf.subarray(FAMILY_SIZE, Math.max(FAMILY_SIZE, end));
      try {
        return { family: "unix", path: strictDecoder.decode(name) };
      } catch {
        // Not UTF-8: `path` can only approximate it; `bytes` keeps it exact.
        return { family: "unix", path: decoder.decode(name), bytes: name.slice() };
      }
    }
    default:
      throw new TypeError(
        `Cannot decode address: unsupported address family ${family}`,
      );
  }
}

function shortAddress(kind: string, length: number): RangeError {
  return new RangeError(
    `Cannot decode address: ${length} bytes are too short for an ${kind} address`,
  );
}

/**
 * Format an address for people: `127.0.0.1:80`, `[::1]:80`, a path, or
 * `@name` for the abstract namespace.
 *
 * @example
 * ```ts
 * import { formatAddress } from "@ffinet/ffinet/ffi";
 * formatAddress({ family: "inet6", address: "::1", port: 80 }); // "[::1]:80"
 * ```
 */
export function formatAddress(addr: SocketAddress): string {
  switch (addr.family) {
    case "inet":
      return `${addr.address}:${addr.port}`;
    case "inet6":
      return `[${addr.address}]:${addr.port}`;
    case "unix":
      return addr.path.startsWith("\0")
        ? `@${addr.path.slice(1)}`
        : addr.path === ""
        ? "(unnamed)"
        : addr.path;
  }
}

/**
 * Build an IP address object from host text and port, choosing IPv4 or IPv6
 * by the text (`"localhost"` means `127.0.0.1`). Throws `TypeError` for text
 * that is neither.
 *
 * @example
 * ```ts
 * import { ipAddress } from "@ffinet/ffinet/ffi";
 * ipAddress("::", 8080); // { family: "inet6", address: "::", port: 8080 }
 * ```
 */
export function ipAddress(host: string, port: number): InetAddress | Inet6Address {
  const h = host === "localhost" ? "127.0.0.1" : host;
  const bare = h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
  if (parseIPv4(bare) !== null) return { family: "inet", address: bare, port };
  if (parseIPv6(bare) !== null) return { family: "inet6", address: bare, port };
  throw new TypeError(
    `Cannot parse address: "${host}" is not an IPv4 or IPv6 address`,
  );
}
