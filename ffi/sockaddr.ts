/**
 * Socket addresses and their C encodings: `sockaddr_in`, `sockaddr_in6` and
 * `sockaddr_un` (pathname, abstract and unnamed), read and written with a
 * `DataView` in the exact layout the kernel expects.
 *
 * @module
 */
import { AF } from "./constants.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "./inet.ts";

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
 */
export interface UnixAddress {
  /** Always `"unix"`. */
  family: "unix";
  /** A filesystem path, `"\0name"` for the abstract namespace, or `""`. */
  path: string;
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

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot encode address: port ${port} is outside 0-65535`,
    );
  }
}

/**
 * Encode an address into a new buffer sized exactly as its `socklen_t`.
 * Throws `TypeError` for malformed address text and `RangeError` for a port
 * outside 0–65535 or a Unix path longer than {@linkcode UNIX_PATH_MAX} bytes,
 * before any system call is made.
 *
 * @example
 * ```ts
 * import { encodeSockaddr } from "./sockaddr.ts";
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
      dv.setUint16(2, addr.port, false);
      buf.set(ip, 4);
      return buf;
    }
    case "inet6": {
      checkPort(addr.port);
      const ip = parseIPv6(addr.address);
      if (ip === null) {
        throw new TypeError(
          `Cannot encode address: "${addr.address}" is not an IPv6 address`,
        );
      }
      const buf = new Uint8Array(SOCKADDR_IN6_SIZE);
      const dv = new DataView(buf.buffer);
      dv.setUint16(0, AF.INET6, true);
      dv.setUint16(2, addr.port, false);
      dv.setUint32(4, addr.flowinfo ?? 0, false);
      buf.set(ip, 8);
      dv.setUint32(24, addr.scopeId ?? 0, true);
      return buf;
    }
    case "unix": {
      const path = encoder.encode(addr.path);
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
      const len = 2 + path.length + (abstract || path.length === 0 ? 0 : 1);
      const buf = new Uint8Array(len);
      new DataView(buf.buffer).setUint16(0, AF.UNIX, true);
      buf.set(path, 2);
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
 * `socklen_t`) from `buf`.
 *
 * @example
 * ```ts
 * import { decodeSockaddr, encodeSockaddr } from "./sockaddr.ts";
 * const sa = encodeSockaddr({ family: "inet6", address: "::1", port: 8080 });
 * decodeSockaddr(sa, sa.byteLength); // { family: "inet6", address: "::1", port: 8080, ... }
 * ```
 */
export function decodeSockaddr(buf: Uint8Array, length: number): SocketAddress {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (length < 2) return { family: "unix", path: "" };
  const family = dv.getUint16(0, true);
  switch (family) {
    case AF.INET:
      return {
        family: "inet",
        address: formatIPv4(buf, 4),
        port: dv.getUint16(2, false),
      };
    case AF.INET6:
      return {
        family: "inet6",
        address: formatIPv6(buf, 8),
        port: dv.getUint16(2, false),
        flowinfo: dv.getUint32(4, false),
        scopeId: dv.getUint32(24, true),
      };
    case AF.UNIX: {
      if (length <= 2) return { family: "unix", path: "" };
      if (buf[2] === 0) {
        return { family: "unix", path: decoder.decode(buf.subarray(2, length)) };
      }
      let end = 2;
      while (end < length && buf[end] !== 0) end++;
      return { family: "unix", path: decoder.decode(buf.subarray(2, end)) };
    }
    default:
      throw new TypeError(
        `Cannot decode address: unsupported address family ${family}`,
      );
  }
}

/**
 * Format an address for people: `127.0.0.1:80`, `[::1]:80`, a path, or
 * `@name` for the abstract namespace.
 *
 * @example
 * ```ts
 * import { formatAddress } from "./sockaddr.ts";
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
 * import { ipAddress } from "./sockaddr.ts";
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
