/**
 * The machine's network interfaces and their IP addresses, read with
 * `getifaddrs(3)`.
 *
 * `struct ifaddrs` on 64-bit Linux (56 bytes): `ifa_next` at 0, `ifa_name`
 * at 8, `ifa_flags` (u32) at 16, `ifa_addr` at 24, `ifa_netmask` at 32,
 * `ifa_ifu` (broadcast / destination address) at 40, `ifa_data` at 48.
 *
 * @module
 */
import { AF } from "./constants.ts";
import { errnoCell, ErrnoError } from "./errno.ts";
import { formatIPv4, formatIPv6 } from "./inet.ts";
import { libc } from "./libc.ts";

/** Interface flags (`IFF_*` from `<net/if.h>`). @example `(flags & IFF.UP) !== 0` */
export const IFF = {
  UP: 0x1,
  BROADCAST: 0x2,
  DEBUG: 0x4,
  LOOPBACK: 0x8,
  POINTOPOINT: 0x10,
  NOTRAILERS: 0x20,
  RUNNING: 0x40,
  NOARP: 0x80,
  PROMISC: 0x100,
  ALLMULTI: 0x200,
  MASTER: 0x400,
  SLAVE: 0x800,
  MULTICAST: 0x1000,
  PORTSEL: 0x2000,
  AUTOMEDIA: 0x4000,
  DYNAMIC: 0x8000,
} as const;

/** One IP address of an interface. */
export interface InterfaceAddress {
  /** `"inet"` (IPv4) or `"inet6"` (IPv6). */
  family: "inet" | "inet6";
  /** The address text, e.g. `"127.0.0.1"` or `"fe80::1"`. */
  address: string;
  /** The netmask text, e.g. `"255.0.0.0"` or `"ffff:ffff:ffff:ffff::"`. */
  netmask: string;
  /** The number of leading one bits of the netmask, e.g. 8 or 64. */
  prefixLength: number;
  /** IPv6 only: `sin6_scope_id`, the interface index for link-local addresses (else 0). */
  scopeId?: number;
}

/** One network interface and its IP addresses. */
export interface NetworkInterface {
  /** The interface name, e.g. `"lo"` or `"eth0"`. */
  name: string;
  /** The `IFF_*` flags (see {@linkcode IFF}). */
  flags: number;
  /** `IFF_UP` is set. */
  up: boolean;
  /** `IFF_LOOPBACK` is set. */
  loopback: boolean;
  /** Its IPv4 and IPv6 addresses in the order the kernel lists them (possibly none). */
  addresses: InterfaceAddress[];
}

const IFADDRS_NEXT = 0;
const IFADDRS_NAME = 8;
const IFADDRS_FLAGS = 16;
const IFADDRS_ADDR = 24;
const IFADDRS_NETMASK = 32;

function prefixLength(mask: Uint8Array): number {
  let bits = 0;
  for (const byte of mask) {
    if (byte === 0xff) {
      bits += 8;
      continue;
    }
    let b = byte;
    while (b & 0x80) {
      bits++;
      b = (b << 1) & 0xff;
    }
    break;
  }
  return bits;
}

/** Copy `length` bytes at `offset` of a `struct sockaddr`, or zeros for NULL. */
function sockaddrBytes(p: Deno.PointerValue, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  if (p !== null) Deno.UnsafePointerView.copyInto(p, out, offset);
  return out;
}

/**
 * List the network interfaces with their IPv4 and IPv6 addresses, grouped by
 * interface name in the order `getifaddrs(3)` first reports each name.
 * Link-layer (`AF_PACKET`) entries and other families contribute the
 * interface and its flags but no address, so an interface without any IP
 * address is listed with an empty `addresses`. Throws an `ErrnoError` when
 * `getifaddrs` fails.
 *
 * @example
 * ```ts
 * import { networkInterfaces } from "@ffinet/ffinet/ffi";
 * for (const ifc of networkInterfaces()) {
 *   console.log(ifc.name, ifc.up, ifc.addresses.map((a) => a.address));
 * }
 * ```
 */
export function networkInterfaces(): NetworkInterface[] {
  const head = new BigUint64Array(1);
  if (libc.getifaddrs(head) < 0) throw new ErrnoError("getifaddrs", errnoCell[0]!);
  const first = Deno.UnsafePointer.create(head[0]!);
  const byName = new Map<string, NetworkInterface>();
  try {
    for (let p = first; p !== null;) {
      const view = new Deno.UnsafePointerView(p);
      const namePtr = view.getPointer(IFADDRS_NAME);
      const name = namePtr === null ? "" : Deno.UnsafePointerView.getCString(namePtr);
      const flags = view.getUint32(IFADDRS_FLAGS);
      let ifc = byName.get(name);
      if (ifc === undefined) {
        ifc = {
          name,
          flags,
          up: (flags & IFF.UP) !== 0,
          loopback: (flags & IFF.LOOPBACK) !== 0,
          addresses: [],
        };
        byName.set(name, ifc);
      }
      const addr = view.getPointer(IFADDRS_ADDR);
      if (addr !== null) {
        const family = new Deno.UnsafePointerView(addr).getUint16(0);
        const mask = view.getPointer(IFADDRS_NETMASK);
        if (family === AF.INET) {
          const a = sockaddrBytes(addr, 4, 4);
          const m = sockaddrBytes(mask, 4, 4);
          ifc.addresses.push({
            family: "inet",
            address: formatIPv4(a),
            netmask: formatIPv4(m),
            prefixLength: prefixLength(m),
          });
        } else if (family === AF.INET6) {
          const a = sockaddrBytes(addr, 8, 20); // sin6_addr then sin6_scope_id
          const m = sockaddrBytes(mask, 8, 16);
          ifc.addresses.push({
            family: "inet6",
            address: formatIPv6(a),
            netmask: formatIPv6(m),
            prefixLength: prefixLength(m),
            scopeId: new DataView(a.buffer).getUint32(16, true),
          });
        }
      }
      p = view.getPointer(IFADDRS_NEXT);
    }
  } finally {
    libc.freeifaddrs(first);
  }
  return [...byName.values()];
}
