/**
 * Host name resolution with glibc's `getaddrinfo(3)`, as `Deno.connect`
 * does: `/etc/hosts`, DNS and the other NSS sources, in the order the
 * system returns them. The call runs on a pool thread (a `nonblocking` FFI
 * symbol), so a slow DNS server never blocks the event loop.
 *
 * @module
 */
import { AF, SOCK } from "./constants.ts";
import { ErrnoError } from "./errno.ts";
import { libc } from "./libc.ts";
import { decodeSockaddr, type Inet6Address, type InetAddress } from "./sockaddr.ts";

/** `struct addrinfo` on 64-bit Linux (x86_64 and aarch64). */
const ADDRINFO = {
  size: 48,
  flags: 0,
  family: 4,
  socktype: 8,
  protocol: 12,
  addrlen: 16,
  addr: 24,
  canonname: 32,
  next: 40,
} as const;

/** `EAI_SYSTEM`: the error is in errno (not readable from a pool thread). */
const EAI_SYSTEM = -11;
/** The longest host name `getaddrinfo` is asked about (DNS names are at most 253 bytes). */
const MAX_HOST_BYTES = 1024;
/** At most this many addresses are returned (a list longer than that is cut). */
const MAX_ADDRESSES = 64;

const encoder = new TextEncoder();

/** Names of the `EAI_*` codes glibc returns. */
const EAI_NAMES: Readonly<Record<number, string>> = {
  [-1]: "EAI_BADFLAGS",
  [-2]: "EAI_NONAME",
  [-3]: "EAI_AGAIN",
  [-4]: "EAI_FAIL",
  [-6]: "EAI_FAMILY",
  [-7]: "EAI_SOCKTYPE",
  [-8]: "EAI_SERVICE",
  [-10]: "EAI_MEMORY",
  [-11]: "EAI_SYSTEM",
  [-5]: "EAI_NODATA",
  [-9]: "EAI_ADDRFAMILY",
};

/**
 * A failed `getaddrinfo(3)`: `code` is the `EAI_*` name, e.g. `"EAI_NONAME"`
 * for a name that does not exist.
 *
 * @example
 * ```ts
 * import { AddressLookupError } from "@ffinet/ffinet";
 * import { resolveHost } from "@ffinet/ffinet/ffi";
 * try {
 *   await resolveHost("no-such-host.invalid");
 * } catch (e) {
 *   if (e instanceof AddressLookupError) console.log(e.code); // "EAI_NONAME"
 * }
 * ```
 */
export class AddressLookupError extends Error {
  /** The `EAI_*` name. */
  readonly code: string;
  /** The raw `getaddrinfo` result (negative). */
  readonly gaiCode: number;
  /** The host that was looked up. */
  readonly host: string;

  /** An error for `host` failing with the `getaddrinfo` result `gaiCode`. */
  constructor(host: string, gaiCode: number) {
    const p = libc.gai_strerror(gaiCode);
    const reason = p === null ? `error ${gaiCode}` : Deno.UnsafePointerView.getCString(p);
    const code = EAI_NAMES[gaiCode] ?? `EAI_${-gaiCode}`;
    super(`Cannot resolve ${JSON.stringify(host)}: ${code} (${reason})`);
    this.name = "AddressLookupError";
    this.code = code;
    this.gaiCode = gaiCode;
    this.host = host;
  }
}

/** Buffers of the getaddrinfo calls in flight: held here, they cannot be collected. */
const inFlight = new Set<Uint8Array[]>();

/** Options for {@linkcode resolveHost}. */
export interface ResolveOptions {
  /** Only IPv4 (`"inet"`) or only IPv6 (`"inet6"`) addresses. Default: both. */
  family?: "inet" | "inet6";
  /** The port put in every returned address. Default 0. */
  port?: number;
}

/**
 * Resolve a host name to stream-socket addresses, in the order
 * `getaddrinfo(3)` returns them (the order to try them in). Duplicates are
 * dropped. Rejects with {@linkcode AddressLookupError}.
 *
 * @example
 * ```ts
 * import { resolveHost } from "@ffinet/ffinet/ffi";
 * const addrs = await resolveHost("localhost", { port: 8080 });
 * console.log(addrs); // e.g. [{ family: "inet6", address: "::1", port: 8080, ... }, ...]
 * ```
 */
export async function resolveHost(
  host: string,
  options: ResolveOptions = {},
): Promise<(InetAddress | Inet6Address)[]> {
  if (typeof host !== "string" || host === "") {
    throw new TypeError(`Cannot resolve host: ${JSON.stringify(host)} is not a host name`);
  }
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Cannot resolve ${JSON.stringify(host)}: port ${port} is not in 0-65535`);
  }
  const family = options.family === undefined
    ? AF.UNSPEC
    : options.family === "inet"
    ? AF.INET
    : options.family === "inet6"
    ? AF.INET6
    : -1;
  if (family < 0) {
    throw new TypeError(`Cannot resolve ${JSON.stringify(host)}: unknown family ${options.family}`);
  }
  if (host.includes("\0")) {
    throw new TypeError(`Cannot resolve host: the name contains a NUL byte`);
  }
  const node = encoder.encode(host + "\0");
  if (node.byteLength > MAX_HOST_BYTES) {
    throw new RangeError(`Cannot resolve host: the name is longer than ${MAX_HOST_BYTES} bytes`);
  }
  const hints = new Uint8Array(ADDRINFO.size);
  const hv = new DataView(hints.buffer);
  hv.setInt32(ADDRINFO.family, family, true);
  hv.setInt32(ADDRINFO.socktype, SOCK.STREAM, true);
  const result = new BigUint64Array(1); // struct addrinfo *res
  const resultBytes = new Uint8Array(result.buffer);
  // getaddrinfo runs on a pool thread while JavaScript (and V8's GC) goes
  // on: every buffer it reads or writes must neither move nor be freed
  // until it returns. Reading `.buffer` moves a small typed array off V8's
  // movable heap (`hints` and `result` did above); `inFlight` holds
  // all three until after the call.
  void node.buffer;
  const held = [node, hints, resultBytes];
  inFlight.add(held);
  let rc: number;
  try {
    rc = await libc.getaddrinfo(node, null, hints, resultBytes);
  } finally {
    inFlight.delete(held);
  }
  if (rc !== 0) {
    throw rc === EAI_SYSTEM
      ? new ErrnoError("getaddrinfo", 5, /* EIO: errno is not readable off-thread */ {
        detail: host,
      })
      : new AddressLookupError(host, rc);
  }
  const head = Deno.UnsafePointer.create(result[0]!);
  if (head === null) return [];
  const out: (InetAddress | Inet6Address)[] = [];
  const seen = new Set<string>();
  try {
    let p: Deno.PointerValue = head;
    for (let i = 0; p !== null && i < MAX_ADDRESSES * 4 && out.length < MAX_ADDRESSES; i++) {
      const view: Deno.UnsafePointerView = new Deno.UnsafePointerView(p);
      const aiFamily = view.getInt32(ADDRINFO.family);
      const addrLen = view.getUint32(ADDRINFO.addrlen);
      const addrPtr = view.getPointer(ADDRINFO.addr);
      if ((aiFamily === AF.INET || aiFamily === AF.INET6) && addrPtr !== null && addrLen <= 128) {
        const bytes = new Uint8Array(addrLen);
        Deno.UnsafePointerView.copyInto(addrPtr, bytes);
        const addr = decodeSockaddr(bytes, addrLen);
        if (addr.family === "inet" || addr.family === "inet6") {
          const key = `${addr.family} ${addr.address}`;
          if (!seen.has(key)) {
            seen.add(key);
            out.push({ ...addr, port });
          }
        }
      }
      p = view.getPointer(ADDRINFO.next);
    }
  } finally {
    libc.freeaddrinfo(head);
  }
  return out;
}
