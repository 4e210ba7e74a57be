/**
 * Typed socket options: every option ffinet knows, with its level, its
 * name and the shape of its value (`boolean`, a number, `linger`, or a
 * timeout in milliseconds encoded as `struct timeval`).
 *
 * @module
 */
import { IPV6, SO, SOL, TCP } from "./constants.ts";
import { check, errnoCell } from "./errno.ts";
import { libc } from "./libc.ts";
import { checkFd, checkInteger, INT32_MAX, INT32_MIN } from "./_view.ts";

/** The longest `SO_LINGER` time: `l_linger` is an `int` of seconds. */
export const LINGER_MAX_SECONDS: number = INT32_MAX;
/**
 * The longest `SO_RCVTIMEO` / `SO_SNDTIMEO`, in milliseconds: about 285
 * years, the most whose microseconds a `number` holds exactly.
 */
export const TIMEOUT_MAX_MS: number = Math.floor(Number.MAX_SAFE_INTEGER / 1000);
/** Microseconds per second (`tv_usec` stays below it). */
const USEC_PER_SEC = 1_000_000;
/** Microseconds per millisecond. */
const USEC_PER_MS = 1000;
/** Bytes of an `int` option value. */
const INT_BYTES = 4;
/** `sizeof(struct linger)`. */
const LINGER_BYTES = 8;
/** `sizeof(struct timeval)` on 64-bit Linux. */
const TIMEVAL_BYTES = 16;

/** `struct linger`: `null` means lingering is off. */
export interface Linger {
  /** Seconds `close` waits for unsent data; 0 makes close send an RST. */
  seconds: number;
}

/** The JavaScript type of each kind of option value. */
export interface SocketOptionKinds {
  /** An `int` used as a flag. */
  bool: boolean;
  /** A plain `int`. */
  int: number;
  /** `struct linger`. */
  linger: Linger | null;
  /** `struct timeval`, as milliseconds. */
  timeval: number;
}

type Kind = keyof SocketOptionKinds;

interface OptionSpec {
  level: number;
  name: number;
  kind: Kind;
  readonly?: true;
  /** For `int` options: the smallest value accepted (default `INT_MIN`). */
  min?: number;
}

/**
 * The options ffinet knows by name, with their level, number and value kind.
 *
 * @example
 * ```ts
 * import { SOCKET_OPTIONS } from "@ffinet/ffinet/ffi";
 * SOCKET_OPTIONS.reusePort; // { level: 1, name: 15, kind: "bool" }
 * ```
 */
export const SOCKET_OPTIONS = {
  /** `SO_REUSEADDR`: bind a port still in TIME_WAIT. */
  reuseAddress: { level: SOL.SOCKET, name: SO.REUSEADDR, kind: "bool" },
  /** `SO_REUSEPORT`: several sockets bind one port; the kernel spreads connections. */
  reusePort: { level: SOL.SOCKET, name: SO.REUSEPORT, kind: "bool" },
  /** `SO_KEEPALIVE`: TCP keepalive probes. */
  keepAlive: { level: SOL.SOCKET, name: SO.KEEPALIVE, kind: "bool" },
  /** `SO_LINGER`: what close does with unsent data. */
  linger: { level: SOL.SOCKET, name: SO.LINGER, kind: "linger" },
  /** `SO_RCVBUF`: receive buffer size (the kernel doubles what you set). */
  receiveBufferSize: { level: SOL.SOCKET, name: SO.RCVBUF, kind: "int", min: 0 },
  /** `SO_SNDBUF`: send buffer size (the kernel doubles what you set). */
  sendBufferSize: { level: SOL.SOCKET, name: SO.SNDBUF, kind: "int", min: 0 },
  /** `SO_RCVLOWAT`: bytes needed before the socket reads as readable. */
  receiveLowWatermark: { level: SOL.SOCKET, name: SO.RCVLOWAT, kind: "int", min: 0 },
  /** `SO_SNDLOWAT`: fixed at 1 on Linux (setting it fails with ENOPROTOOPT). */
  sendLowWatermark: { level: SOL.SOCKET, name: SO.SNDLOWAT, kind: "int" },
  /** `SO_RCVTIMEO` in milliseconds (blocking sockets only). */
  receiveTimeout: { level: SOL.SOCKET, name: SO.RCVTIMEO, kind: "timeval" },
  /** `SO_SNDTIMEO` in milliseconds (blocking sockets only). */
  sendTimeout: { level: SOL.SOCKET, name: SO.SNDTIMEO, kind: "timeval" },
  /** `SO_ERROR`: the pending error, cleared by reading it. */
  error: { level: SOL.SOCKET, name: SO.ERROR, kind: "int", readonly: true },
  /** `SO_TYPE`: `SOCK_STREAM`, `SOCK_DGRAM`, ... */
  type: { level: SOL.SOCKET, name: SO.TYPE, kind: "int", readonly: true },
  /** `SO_ACCEPTCONN`: whether the socket is listening. */
  acceptConnections: { level: SOL.SOCKET, name: SO.ACCEPTCONN, kind: "bool", readonly: true },
  /** `SO_DOMAIN`: the address family. */
  domain: { level: SOL.SOCKET, name: SO.DOMAIN, kind: "int", readonly: true },
  /** `SO_BROADCAST`: allow datagrams to broadcast addresses. */
  broadcast: { level: SOL.SOCKET, name: SO.BROADCAST, kind: "bool" },
  /** `TCP_NODELAY`: disable Nagle's algorithm. */
  noDelay: { level: SOL.TCP, name: TCP.NODELAY, kind: "bool" },
  /** `TCP_MAXSEG`: the maximum segment size. */
  maxSegment: { level: SOL.TCP, name: TCP.MAXSEG, kind: "int", min: 0 },
  /** `TCP_KEEPIDLE`: idle seconds before the first keepalive probe. */
  keepIdle: { level: SOL.TCP, name: TCP.KEEPIDLE, kind: "int", min: 1 },
  /** `TCP_KEEPINTVL`: seconds between keepalive probes. */
  keepInterval: { level: SOL.TCP, name: TCP.KEEPINTVL, kind: "int", min: 1 },
  /** `TCP_KEEPCNT`: probes before the connection is dropped. */
  keepCount: { level: SOL.TCP, name: TCP.KEEPCNT, kind: "int", min: 1 },
  /** `IPV6_V6ONLY`: an IPv6 socket that refuses IPv4-mapped peers. */
  v6Only: { level: SOL.IPV6, name: IPV6.V6ONLY, kind: "bool" },
  /**
   * `TCP_DEFER_ACCEPT` (9): seconds a listener waits for the client's first
   * data before `accept` returns the connection (rounded up by the kernel to
   * SYN-ACK retransmissions).
   */
  deferAccept: { level: SOL.TCP, name: 9, kind: "int" },
  /** `TCP_FASTOPEN` (23): a listener's queue of pending TCP Fast Open requests (0: off). */
  fastOpen: { level: SOL.TCP, name: 23, kind: "int" },
  /**
   * `SO_INCOMING_CPU` (49): the CPU a socket is tied to. In an `SO_REUSEPORT`
   * group (Linux 6.1+), a listener with this set to the CPU that handles a
   * SYN is preferred for that connection.
   */
  incomingCpu: { level: SOL.SOCKET, name: 49, kind: "int" },
} as const satisfies Record<string, OptionSpec>;

/** The name of a known socket option. */
export type SocketOptionName = keyof typeof SOCKET_OPTIONS;
/** The value type of option `N`. */
export type SocketOptionValue<N extends SocketOptionName> =
  SocketOptionKinds[(typeof SOCKET_OPTIONS)[N]["kind"]];
/** Names of the options that can be set. */
export type WritableSocketOptionName = {
  [N in SocketOptionName]: (typeof SOCKET_OPTIONS)[N] extends { readonly: true } ? never : N;
}[SocketOptionName];

const valueBuf = new Uint8Array(16);
const valueView = new DataView(valueBuf.buffer);
const lenCell = new Uint32Array(1);

function encode(optName: string, spec: OptionSpec, value: unknown): Uint8Array {
  const kind = spec.kind;
  const action = `set socket option ${optName}`;
  const fail = (expected: string): never => {
    throw new TypeError(
      `Cannot set socket option ${optName}: expected ${expected}, got ${
        value === null ? "null" : typeof value
      }`,
    );
  };
  switch (kind) {
    case "bool":
      if (typeof value !== "boolean") fail("a boolean");
      valueView.setInt32(0, value ? 1 : 0, true);
      return valueBuf.subarray(0, INT_BYTES);
    case "int":
      if (typeof value !== "number") fail("an integer");
      checkInteger(action, "value", value as number, spec.min ?? INT32_MIN, INT32_MAX);
      valueView.setInt32(0, value as number, true);
      return valueBuf.subarray(0, INT_BYTES);
    case "linger": {
      if (
        value !== null &&
        (typeof value !== "object" || typeof (value as Linger).seconds !== "number")
      ) {
        fail("{ seconds: number } or null");
      }
      const l = value as Linger | null;
      if (l !== null) checkInteger(action, "seconds", l.seconds, 0, LINGER_MAX_SECONDS);
      valueView.setInt32(0, l === null ? 0 : 1, true);
      valueView.setInt32(4, l === null ? 0 : l.seconds, true);
      return valueBuf.subarray(0, LINGER_BYTES);
    }
    case "timeval": {
      if (typeof value !== "number") fail("a non-negative number of milliseconds");
      const ms = value as number;
      if (!(ms >= 0 && ms <= TIMEOUT_MAX_MS)) {
        throw new RangeError(
          `Cannot ${action}: ${ms} ms is not a number from 0 to ${TIMEOUT_MAX_MS}`,
        );
      }
      const usec = Math.round(ms * USEC_PER_MS);
      valueView.setBigInt64(0, BigInt(Math.floor(usec / USEC_PER_SEC)), true);
      valueView.setBigInt64(8, BigInt(usec % USEC_PER_SEC), true);
      return valueBuf.subarray(0, TIMEVAL_BYTES);
    }
  }
}

/**
 * Set a socket option by name, checking the value's type first. Throws
 * `TypeError` for a value of the wrong type, `RangeError` for a number out
 * of the option's range (an `int`, a buffer size below 0, linger seconds
 * beyond {@linkcode LINGER_MAX_SECONDS}, a timeout beyond
 * {@linkcode TIMEOUT_MAX_MS}) and {@linkcode ErrnoError} when the kernel
 * refuses it.
 *
 * @example
 * ```ts
 * import { setSocketOption } from "@ffinet/ffinet/ffi";
 * import { Socket } from "@ffinet/ffinet/ffi";
 * using s = Socket.create("inet", "stream");
 * setSocketOption(s.fd, "reusePort", true);
 * setSocketOption(s.fd, "linger", { seconds: 0 });
 * ```
 */
export function setSocketOption<N extends WritableSocketOptionName>(
  fd: number,
  name: N,
  value: SocketOptionValue<N>,
): void {
  const spec: OptionSpec | undefined = (SOCKET_OPTIONS as Record<string, OptionSpec>)[name];
  if (spec === undefined) {
    throw new TypeError(`Cannot set socket option: unknown option "${String(name)}"`);
  }
  if (spec.readonly) throw new TypeError(`Cannot set socket option ${name}: it is read-only`);
  checkFd(`setsockopt(${name})`, fd);
  const bytes = encode(name, spec, value);
  const r = libc.setsockopt(fd, spec.level, spec.name, bytes, bytes.byteLength);
  if (r < 0) check(`setsockopt(${name})`, -errnoCell[0]!);
}

/**
 * Read a socket option by name.
 *
 * @example
 * ```ts
 * import { getSocketOption } from "@ffinet/ffinet/ffi";
 * import { Socket } from "@ffinet/ffinet/ffi";
 * using s = Socket.create("inet", "stream");
 * const on = getSocketOption(s.fd, "noDelay"); // boolean
 * const pending = getSocketOption(s.fd, "error"); // errno number, 0 if none
 * ```
 */
export function getSocketOption<N extends SocketOptionName>(
  fd: number,
  name: N,
): SocketOptionValue<N> {
  const spec: OptionSpec | undefined = (SOCKET_OPTIONS as Record<string, OptionSpec>)[name];
  if (spec === undefined) {
    throw new TypeError(`Cannot get socket option: unknown option "${String(name)}"`);
  }
  checkFd(`getsockopt(${name})`, fd);
  valueBuf.fill(0);
  lenCell[0] = valueBuf.byteLength;
  const r = libc.getsockopt(fd, spec.level, spec.name, valueBuf, lenCell);
  if (r < 0) check(`getsockopt(${name})`, -errnoCell[0]!);
  let out: unknown;
  switch (spec.kind) {
    case "bool":
      out = valueView.getInt32(0, true) !== 0;
      break;
    case "int":
      out = valueView.getInt32(0, true);
      break;
    case "linger":
      out = valueView.getInt32(0, true) === 0 ? null : { seconds: valueView.getInt32(4, true) };
      break;
    case "timeval":
      out = Number(valueView.getBigInt64(0, true)) * 1000 +
        Number(valueView.getBigInt64(8, true)) / 1000;
      break;
  }
  return out as SocketOptionValue<N>;
}
