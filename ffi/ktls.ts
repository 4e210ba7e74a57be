/**
 * Kernel TLS: whether this kernel can take TLS records off user space. A
 * TCP socket hands its records to the kernel once its upper-layer protocol
 * (`TCP_ULP`) is `"tls"`, which needs the `tls` module. The binding sets and
 * reads a socket's ULP; the probe asks the kernel for the `tls` ULP on a
 * fresh TCP socket: `ENOENT` means the module is absent (and could not be
 * loaded), while `ENOTCONN` means it exists (it attaches to connected
 * sockets only).
 *
 * @module
 */
import { ENOENT, errnoCell, ErrnoError } from "./errno.ts";
import { libc } from "./libc.ts";
import { SOL } from "./constants.ts";
import { byteLengthOf, checkFd, isResizableOrShared } from "./_view.ts";
import { readProcFile } from "./process.ts";
import { Socket } from "./socket.ts";

/** `TCP_ULP` (31): a TCP socket's upper-layer protocol, by name. */
export const TCP_ULP = 31;
/** `TCP_ULP_NAME_MAX` (16): a ULP name's buffer in the kernel, its NUL included. */
export const TCP_ULP_NAME_MAX = 16;
/** `ENOTCONN`: the ULP exists but attaches to connected sockets only. */
const ENOTCONN = 107;
/** The kernel's list of ULPs it has loaded. */
const AVAILABLE_ULP_PATH = "/proc/sys/net/ipv4/tcp_available_ulp";

/** The bytes `setsockopt(TCP_ULP)` reads: a name of up to 15 bytes. */
const nameBuf = new Uint8Array(TCP_ULP_NAME_MAX);
const lenCell = new Uint32Array(1);

/**
 * Set the upper-layer protocol of TCP socket `fd` (`setsockopt(fd,
 * SOL_TCP, TCP_ULP, name)`). The name is 1 to 15 bytes of letters, digits,
 * `_` or `-`; anything else is a `TypeError` or `RangeError` before any call.
 * The kernel answers `ENOENT` ({@linkcode ErrnoError}) for a ULP it does
 * not have.
 *
 * @example
 * ```ts
 * import { Socket, setTcpUlp } from "@ffinet/ffinet/ffi";
 * using s = Socket.create("inet", "stream");
 * try {
 *   setTcpUlp(s.fd, "tls");
 * } catch (e) {
 *   console.log((e as Error).message); // Cannot setsockopt(TCP_ULP): ENOENT ... [tls]
 * }
 * ```
 */
export function setTcpUlp(fd: number, name: string): void {
  checkFd("setsockopt(TCP_ULP)", fd);
  if (typeof name !== "string") {
    throw new TypeError(
      `Cannot setsockopt(TCP_ULP): the name must be a string, got ${
        name === null ? "null" : typeof name
      }`,
    );
  }
  if (!/^[A-Za-z0-9_-]+$/.test(name) || name.length >= TCP_ULP_NAME_MAX) {
    throw new RangeError(
      `Cannot setsockopt(TCP_ULP): the name ${JSON.stringify(name)} is not 1 to ${
        TCP_ULP_NAME_MAX - 1
      } letters, digits, _ or -`,
    );
  }
  // ASCII only (checked above): one byte per character.
  for (let i = 0; i < name.length; i++) nameBuf[i] = name.charCodeAt(i);
  const r = libc.setsockopt(fd, SOL.TCP, TCP_ULP, nameBuf, name.length);
  if (r < 0) throw new ErrnoError("setsockopt(TCP_ULP)", errnoCell[0]!, { detail: name });
}

/**
 * Read the upper-layer protocol of TCP socket `fd` into `into`
 * (`getsockopt(fd, SOL_TCP, TCP_ULP)`): returns how many bytes of the name
 * the kernel wrote there, 0 when the socket has none. The kernel writes at
 * most `into`'s length (read once, with the built-in getter) and at most
 * {@linkcode TCP_ULP_NAME_MAX} bytes. A view over a resizable or shared
 * buffer is refused: its length could change under the call.
 *
 * @example
 * ```ts
 * import { readTcpUlp, Socket } from "@ffinet/ffinet/ffi";
 * using s = Socket.create("inet", "stream");
 * const name = new Uint8Array(16);
 * readTcpUlp(s.fd, name); // 0: a plain TCP socket
 * ```
 */
export function readTcpUlp(fd: number, into: Uint8Array): number {
  const call = "getsockopt(TCP_ULP)";
  checkFd(call, fd);
  if (isResizableOrShared(call, "the buffer", into)) {
    throw new TypeError(`Cannot ${call}: the buffer is resizable or shared`);
  }
  const size = Math.min(byteLengthOf(call, "the buffer", into), TCP_ULP_NAME_MAX);
  if (size === 0) return 0;
  lenCell[0] = size;
  const r = libc.getsockopt(fd, SOL.TCP, TCP_ULP, into, lenCell);
  if (r < 0) throw new ErrnoError(call, errnoCell[0]!);
  return Math.min(lenCell[0]!, size);
}

/**
 * The upper-layer protocol of TCP socket `fd` by name: `""` for none.
 *
 * @example
 * ```ts
 * import { getTcpUlp, Socket } from "@ffinet/ffinet/ffi";
 * using s = Socket.create("inet", "stream");
 * getTcpUlp(s.fd); // ""
 * ```
 */
export function getTcpUlp(fd: number): string {
  const name = new Uint8Array(TCP_ULP_NAME_MAX);
  const n = readTcpUlp(fd, name);
  const end = name.subarray(0, n).indexOf(0);
  return new TextDecoder().decode(name.subarray(0, end < 0 ? n : end));
}

/**
 * The ULPs the kernel has loaded (`/proc/sys/net/ipv4/tcp_available_ulp`),
 * e.g. `["mptcp"]` or `["espintcp", "mptcp", "tls"]`; empty where the file
 * is missing. A ULP that is not loaded yet may still load on first use.
 *
 * @example
 * ```ts
 * import { availableTcpUlps } from "@ffinet/ffinet/ffi";
 * availableTcpUlps().includes("tls");
 * ```
 */
export function availableTcpUlps(): string[] {
  let text: string;
  try {
    text = readProcFile(AVAILABLE_ULP_PATH);
  } catch {
    return [];
  }
  return text.split(/\s+/).filter((s) => s !== "");
}

/** Whether the kernel can do TLS, and why not. */
export interface KernelTlsSupport {
  /** Whether the kernel has the `tls` ULP. */
  available: boolean;
  /** Why it is unavailable (empty when available). */
  reason: string;
}

let probed: KernelTlsSupport | undefined;

/**
 * Whether this kernel has the `tls` ULP, asked once per process: the
 * `tls` ULP is set on a fresh TCP socket, which the kernel refuses with
 * `ENOENT` when it has no such ULP (it loads the module first if it can)
 * and with `ENOTCONN` when it has one.
 *
 * @example
 * ```ts
 * import { kernelTlsSupport } from "@ffinet/ffinet/ffi";
 * const { available, reason } = kernelTlsSupport();
 * if (!available) console.log(`no kTLS: ${reason}`);
 * ```
 */
export function kernelTlsSupport(): KernelTlsSupport {
  if (probed !== undefined) return probed;
  let result: KernelTlsSupport;
  try {
    using s = Socket.create("inet", "stream");
    setTcpUlp(s.fd, "tls");
    result = { available: true, reason: "" };
  } catch (e) {
    if (e instanceof ErrnoError && e.errno === ENOTCONN) {
      result = { available: true, reason: "" };
    } else if (e instanceof ErrnoError && e.errno === ENOENT) {
      result = {
        available: false,
        reason: `the kernel has no "tls" ULP (module tls not loaded; ${AVAILABLE_ULP_PATH}: ${
          availableTcpUlps().join(" ") || "empty"
        })`,
      };
    } else {
      result = {
        available: false,
        reason: `probing the "tls" ULP failed: ${(e as Error).message}`,
      };
    }
  }
  probed = Object.freeze(result);
  return probed;
}
