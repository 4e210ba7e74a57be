/**
 * `struct iovec`, `struct msghdr` and `struct cmsghdr` codecs for the 64-bit
 * Linux ABIs ffinet supports (x86_64 and aarch64, both little-endian), and
 * fd passing over Unix sockets with `SCM_RIGHTS`.
 *
 * Layouts (LP64):
 *
 * - `struct iovec` (16 bytes): `void *iov_base` at 0, `size_t iov_len` at 8.
 * - `struct msghdr` (56 bytes): `msg_name` at 0, `msg_namelen` (u32) at 8,
 *   `msg_iov` at 16, `msg_iovlen` at 24, `msg_control` at 32,
 *   `msg_controllen` at 40, `msg_flags` (i32) at 48.
 * - `struct cmsghdr` (16 bytes): `size_t cmsg_len` at 0, `cmsg_level` at 8,
 *   `cmsg_type` at 12, data at 16; messages are aligned to 8 bytes.
 *
 * These structs hold raw addresses of `Uint8Array`s. An address stays valid
 * only while its array is alive and its `ArrayBuffer` is neither detached,
 * transferred nor resized. The helpers here keep what they point at
 * referenced for the duration of each call; if you encode structs yourself,
 * you must keep the arrays alive until the system call returns.
 *
 * @module
 */
import { MSG, SCM, SOL } from "./constants.ts";
import { check } from "./errno.ts";
import { close, readv, recvmsg, sendmsg, writev } from "./syscalls.ts";

/** `sizeof(struct iovec)` on 64-bit Linux. */
export const IOVEC_SIZE = 16;
/** `sizeof(struct msghdr)` on 64-bit Linux. */
export const MSGHDR_SIZE = 56;
/** `sizeof(struct cmsghdr)` on 64-bit Linux: where a control message's data starts. */
export const CMSGHDR_SIZE = 16;
/** `IOV_MAX`: the most iovecs one `readv`/`writev`/`sendmsg` accepts. */
export const IOV_MAX = 1024;
/** `SCM_MAX_FD`: the most fds one `SCM_RIGHTS` message may carry. */
export const SCM_MAX_FD = 253;
/** The smallest control buffer {@linkcode recvFds} uses, in bytes. */
export const MIN_CONTROL_SIZE = 64;

/**
 * `CMSG_ALIGN(len)`: `len` rounded up to the 8-byte alignment of control
 * messages.
 *
 * @example
 * ```ts
 * import { CMSG_ALIGN } from "./msghdr.ts";
 * CMSG_ALIGN(12); // 16
 * ```
 */
export function CMSG_ALIGN(len: number): number {
  return (len + 7) & ~7;
}

/**
 * `CMSG_SPACE(len)`: the bytes a control message with `len` data bytes
 * occupies in a control buffer, padding included.
 *
 * @example
 * ```ts
 * import { CMSG_SPACE } from "./msghdr.ts";
 * CMSG_SPACE(4); // 24: room for one fd
 * ```
 */
export function CMSG_SPACE(len: number): number {
  return CMSG_ALIGN(CMSGHDR_SIZE) + CMSG_ALIGN(len);
}

/**
 * `CMSG_LEN(len)`: the value of `cmsg_len` for a message with `len` data bytes.
 *
 * @example
 * ```ts
 * import { CMSG_LEN } from "./msghdr.ts";
 * CMSG_LEN(4); // 20
 * ```
 */
export function CMSG_LEN(len: number): number {
  return CMSG_ALIGN(CMSGHDR_SIZE) + len;
}

/** Objects a call in progress points at: a GC root while the call runs. */
const pins: unknown[] = [];

/**
 * The address of the first byte of `bytes` (its `byteOffset` included) as a
 * BigInt, or `0n` for an empty array.
 */
function addressOf(bytes: Uint8Array): bigint {
  // Touching .buffer makes V8 move a small on-heap typed array's data to a
  // stable off-heap backing store before its address is taken.
  void bytes.buffer;
  if (bytes.byteLength === 0) return 0n;
  const p = Deno.UnsafePointer.of(bytes);
  return p === null ? 0n : Deno.UnsafePointer.value(p);
}

/** One slice of a `Uint8Array` for an {@linkcode IovecArray}. */
export interface IovecChunk {
  /** The bytes to read into or write from. */
  data: Uint8Array;
  /** Where in `data` the slice starts (default 0). */
  offset?: number;
  /** How many bytes (default: the rest of `data` after `offset`). */
  length?: number;
}

/**
 * An encoded array of `struct iovec` for `readv(2)` / `writev(2)` /
 * `sendmsg(2)`, built from `Uint8Array`s or slices of them.
 *
 * The object keeps every array it points at referenced, so the addresses stay
 * valid for as long as the `IovecArray` itself is alive. Keep it referenced
 * until any system call that uses {@linkcode IovecArray.buffer} returns (its
 * own {@linkcode IovecArray.readv} and {@linkcode IovecArray.writev} do that
 * for you), and do not detach, transfer or resize the arrays' buffers while
 * it is in use.
 *
 * @example Gather-write three chunks in one call
 * ```ts ignore
 * import { IovecArray } from "./msghdr.ts";
 * const enc = new TextEncoder();
 * const iov = new IovecArray([
 *   enc.encode("HTTP/1.1 200 OK\r\n"),
 *   { data: enc.encode("xxContent-Length: 2\r\n\r\n"), offset: 2 },
 *   enc.encode("hi"),
 * ]);
 * const n = iov.writev(fd); // bytes written, or -errno
 * ```
 */
export class IovecArray {
  #chunks: Uint8Array[];
  #buffer: Uint8Array;
  #total: number;

  /**
   * Encode `chunks` in order. Throws `RangeError` when a slice lies outside
   * its array or there are more than {@linkcode IOV_MAX} chunks.
   */
  constructor(chunks: ReadonlyArray<Uint8Array | IovecChunk>) {
    if (chunks.length > IOV_MAX) {
      throw new RangeError(
        `Cannot encode iovec: ${chunks.length} chunks exceed IOV_MAX (${IOV_MAX})`,
      );
    }
    this.#chunks = [];
    this.#buffer = new Uint8Array(Math.max(1, chunks.length) * IOVEC_SIZE);
    const view = new DataView(this.#buffer.buffer);
    let total = 0;
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]!;
      let slice: Uint8Array;
      if (chunk instanceof Uint8Array) {
        slice = chunk;
      } else {
        const offset = chunk.offset ?? 0;
        const available = chunk.data.byteLength - offset;
        const length = chunk.length ?? available;
        if (
          !Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 ||
          length > available
        ) {
          throw new RangeError(
            `Cannot encode iovec: chunk ${i} (offset ${offset}, length ${length}) is outside its ${chunk.data.byteLength}-byte array`,
          );
        }
        slice = chunk.data.subarray(offset, offset + length);
      }
      this.#chunks.push(slice);
      view.setBigUint64(i * IOVEC_SIZE, addressOf(slice), true);
      view.setBigUint64(i * IOVEC_SIZE + 8, BigInt(slice.byteLength), true);
      total += slice.byteLength;
    }
    this.#total = total;
  }

  /** The encoded `struct iovec[]`, to pass as the `iov` argument. */
  get buffer(): Uint8Array {
    return this.#buffer;
  }

  /** The number of iovecs (the `iovcnt` argument). */
  get count(): number {
    return this.#chunks.length;
  }

  /** The sum of all chunk lengths. */
  get totalLength(): number {
    return this.#total;
  }

  /** The slices the iovecs point at, in order. */
  get chunks(): readonly Uint8Array[] {
    return this.#chunks;
  }

  /**
   * `readv(2)` into the chunks: bytes read, 0 at EOF, or -errno.
   *
   * @example
   * ```ts ignore
   * const n = new IovecArray([head, body]).readv(fd);
   * ```
   */
  readv(fd: number): number {
    pins.push(this);
    try {
      return readv(fd, this.#buffer, this.#chunks.length);
    } finally {
      pins.pop();
    }
  }

  /**
   * `writev(2)` from the chunks: bytes written or -errno.
   *
   * @example
   * ```ts ignore
   * const n = new IovecArray([head, body]).writev(fd);
   * ```
   */
  writev(fd: number): number {
    pins.push(this);
    try {
      return writev(fd, this.#buffer, this.#chunks.length);
    } finally {
      pins.pop();
    }
  }
}

/** One control message read from a control buffer. */
export interface ControlMessage {
  /** `cmsg_level`, e.g. `SOL_SOCKET`. */
  level: number;
  /** `cmsg_type`, e.g. `SCM_RIGHTS`. */
  type: number;
  /** The message's data bytes (a view into the control buffer). */
  data: Uint8Array;
}

/**
 * Write one control message at `offset` of `control` and return the offset
 * of the next one (`offset + CMSG_SPACE(data.length)`). Throws `RangeError`
 * when it does not fit.
 *
 * @example
 * ```ts
 * import { CMSG_SPACE, writeControlMessage } from "./msghdr.ts";
 * import { SCM, SOL } from "./constants.ts";
 * const control = new Uint8Array(CMSG_SPACE(4));
 * const fds = new Uint8Array(new Int32Array([0]).buffer);
 * writeControlMessage(control, 0, SOL.SOCKET, SCM.RIGHTS, fds); // 24
 * ```
 */
export function writeControlMessage(
  control: Uint8Array,
  offset: number,
  level: number,
  type: number,
  data: Uint8Array,
): number {
  if (offset % 8 !== 0 || offset < 0 || offset + CMSG_SPACE(data.byteLength) > control.byteLength) {
    throw new RangeError(
      `Cannot write control message: ${
        CMSG_SPACE(data.byteLength)
      } bytes at offset ${offset} do not fit a ${control.byteLength}-byte control buffer`,
    );
  }
  const view = new DataView(control.buffer, control.byteOffset, control.byteLength);
  view.setBigUint64(offset, BigInt(CMSG_LEN(data.byteLength)), true);
  view.setInt32(offset + 8, level, true);
  view.setInt32(offset + 12, type, true);
  control.set(data, offset + CMSGHDR_SIZE);
  control.fill(0, offset + CMSG_LEN(data.byteLength), offset + CMSG_SPACE(data.byteLength));
  return offset + CMSG_SPACE(data.byteLength);
}

/**
 * Read the control messages in the first `length` bytes of `control` (the
 * `msg_controllen` the kernel reported), walking them as `CMSG_FIRSTHDR` /
 * `CMSG_NXTHDR` do and stopping at the first malformed header.
 *
 * @example
 * ```ts
 * import { CMSG_SPACE, readControlMessages, writeControlMessage } from "./msghdr.ts";
 * const control = new Uint8Array(CMSG_SPACE(4));
 * writeControlMessage(control, 0, 1, 1, new Uint8Array(4));
 * readControlMessages(control, control.length); // [{ level: 1, type: 1, data: ... }]
 * ```
 */
export function readControlMessages(control: Uint8Array, length: number): ControlMessage[] {
  const end = Math.min(length, control.byteLength);
  const view = new DataView(control.buffer, control.byteOffset, control.byteLength);
  const out: ControlMessage[] = [];
  let offset = 0;
  while (offset + CMSGHDR_SIZE <= end) {
    const len = Number(view.getBigUint64(offset, true));
    if (len < CMSGHDR_SIZE || offset + len > end) break;
    out.push({
      level: view.getInt32(offset + 8, true),
      type: view.getInt32(offset + 12, true),
      data: control.subarray(offset + CMSGHDR_SIZE, offset + len),
    });
    offset += CMSG_ALIGN(len);
  }
  return out;
}

/** The fields of a `struct msghdr` to encode with {@linkcode Msghdr}. */
export interface MsghdrOptions {
  /** An encoded socket address (`msg_name`), e.g. from `encodeSockaddr`, or a buffer to receive one. */
  name?: Uint8Array;
  /** The data buffers (`msg_iov` / `msg_iovlen`). */
  iov?: IovecArray;
  /** The control buffer (`msg_control`). */
  control?: Uint8Array;
  /** `msg_controllen`; defaults to `control`'s length. Must not exceed it. */
  controlLength?: number;
}

/**
 * An encoded `struct msghdr` that keeps its name, iovecs and control buffer
 * referenced. Pass {@linkcode Msghdr.header} to `sendmsg`/`recvmsg` while the
 * `Msghdr` object is alive (its {@linkcode Msghdr.sendmsg} and
 * {@linkcode Msghdr.recvmsg} do that for you); after `recvmsg` read back the
 * lengths and flags the kernel wrote.
 *
 * @example
 * ```ts ignore
 * import { IovecArray, Msghdr } from "./msghdr.ts";
 * const msg = new Msghdr({ iov: new IovecArray([buf]), control: new Uint8Array(64) });
 * const n = msg.recvmsg(fd, 0);
 * if (n >= 0) console.log(msg.flags, msg.controlLength);
 * ```
 */
export class Msghdr {
  #header = new Uint8Array(MSGHDR_SIZE);
  #view: DataView;
  #name: Uint8Array | undefined;
  #iov: IovecArray | undefined;
  #control: Uint8Array | undefined;

  /** Encode the header. Throws `RangeError` for a `controlLength` beyond `control`. */
  constructor(options: MsghdrOptions = {}) {
    this.#view = new DataView(this.#header.buffer);
    this.#name = options.name;
    this.#iov = options.iov;
    this.#control = options.control;
    const controlLength = options.controlLength ?? options.control?.byteLength ?? 0;
    if (controlLength < 0 || controlLength > (options.control?.byteLength ?? 0)) {
      throw new RangeError(
        `Cannot encode msghdr: control length ${controlLength} exceeds the control buffer`,
      );
    }
    const v = this.#view;
    if (options.name !== undefined) {
      v.setBigUint64(0, addressOf(options.name), true);
      v.setUint32(8, options.name.byteLength, true);
    }
    if (options.iov !== undefined) {
      v.setBigUint64(16, addressOf(options.iov.buffer), true);
      v.setBigUint64(24, BigInt(options.iov.count), true);
    }
    if (options.control !== undefined && controlLength > 0) {
      v.setBigUint64(32, addressOf(options.control), true);
      v.setBigUint64(40, BigInt(controlLength), true);
    }
  }

  /** The 56 encoded bytes, to pass as the `msg` argument. */
  get header(): Uint8Array {
    return this.#header;
  }

  /** `msg_namelen`: after `recvmsg`, the length of the sender's address. */
  get nameLength(): number {
    return this.#view.getUint32(8, true);
  }

  /** `msg_controllen`: after `recvmsg`, the bytes of control data received. */
  get controlLength(): number {
    return Number(this.#view.getBigUint64(40, true));
  }

  /** `msg_flags`: after `recvmsg`, e.g. `MSG_TRUNC` / `MSG_CTRUNC`. */
  get flags(): number {
    return this.#view.getInt32(48, true);
  }

  /** The control messages received (after `recvmsg`) or encoded (before `sendmsg`). */
  controlMessages(): ControlMessage[] {
    return this.#control === undefined
      ? []
      : readControlMessages(this.#control, this.controlLength);
  }

  /**
   * `sendmsg(2)` with this header: bytes sent or -errno.
   *
   * @example
   * ```ts ignore
   * const n = new Msghdr({ iov }).sendmsg(fd, MSG.NOSIGNAL);
   * ```
   */
  sendmsg(fd: number, flags: number): number {
    pins.push(this);
    try {
      return sendmsg(fd, this.#header, flags);
    } finally {
      pins.pop();
    }
  }

  /**
   * `recvmsg(2)` with this header: bytes received, 0 at EOF, or -errno.
   *
   * @example
   * ```ts ignore
   * const n = msg.recvmsg(fd, MSG.CMSG_CLOEXEC);
   * ```
   */
  recvmsg(fd: number, flags: number): number {
    pins.push(this);
    try {
      return recvmsg(fd, this.#header, flags);
    } finally {
      pins.pop();
    }
  }

  /** The `msg_name` buffer, if any. */
  get name(): Uint8Array | undefined {
    return this.#name;
  }

  /** The iovecs, if any. */
  get iov(): IovecArray | undefined {
    return this.#iov;
  }

  /** The control buffer, if any. */
  get control(): Uint8Array | undefined {
    return this.#control;
  }
}

function checkFds(fds: readonly number[]): void {
  if (fds.length > SCM_MAX_FD) {
    throw new RangeError(
      `Cannot send fds: ${fds.length} fds exceed SCM_MAX_FD (${SCM_MAX_FD})`,
    );
  }
  for (const fd of fds) {
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
      throw new RangeError(`Cannot send fds: ${fd} is not a file descriptor`);
    }
  }
}

/**
 * Send `data` and the file descriptors `fds` over the Unix socket `fd` in
 * one `sendmsg(2)` with an `SCM_RIGHTS` control message (flags default to
 * `MSG_NOSIGNAL`). Returns the bytes of `data` sent, or -errno.
 *
 * `data` must hold at least one byte: on a stream socket the kernel drops
 * the fds of an empty message. The fds stay open here; the receiver gets
 * duplicates. Throws `RangeError` (before any system call) for empty
 * `data`, an invalid fd, or more than {@linkcode SCM_MAX_FD} fds.
 *
 * @example
 * ```ts ignore
 * import { sendFds } from "./msghdr.ts";
 * const n = sendFds(unixSocket, [listenFd], new Uint8Array([1]));
 * if (n < 0) throw new ErrnoError("sendmsg", -n);
 * ```
 */
export function sendFds(
  fd: number,
  fds: readonly number[],
  data: Uint8Array,
  flags: number = MSG.NOSIGNAL,
): number {
  if (data.byteLength === 0) {
    throw new RangeError("Cannot send fds: data must hold at least one byte");
  }
  checkFds(fds);
  const iov = new IovecArray([data]);
  if (fds.length === 0) return new Msghdr({ iov }).sendmsg(fd, flags);
  const space = CMSG_SPACE(fds.length * 4);
  const control = new Uint8Array(Math.max(MIN_CONTROL_SIZE, space));
  writeControlMessage(
    control,
    0,
    SOL.SOCKET,
    SCM.RIGHTS,
    new Uint8Array(Int32Array.from(fds).buffer),
  );
  // msg_controllen covers exactly the one message: trailing zero bytes
  // would read as a malformed header and make the kernel fail with EINVAL.
  return new Msghdr({ iov, control, controlLength: space }).sendmsg(fd, flags);
}

/** What {@linkcode recvFds} received. */
export interface RecvFdsResult {
  /** Bytes of data received, 0 at EOF, or -errno (then `fds` is empty). */
  bytes: number;
  /** The received fds, opened close-on-exec; the caller owns and must close them. */
  fds: number[];
  /**
   * True when more fds were sent than fit (`MSG_CTRUNC`) or than `maxFds`:
   * every fd that arrived has then been closed and `fds` is empty.
   */
  truncated: boolean;
}

/**
 * Receive data into `buf` and up to `maxFds` file descriptors from the Unix
 * socket `fd` with one `recvmsg(2)` (`MSG_CMSG_CLOEXEC` is always added to
 * `flags`). The control buffer is at least {@linkcode MIN_CONTROL_SIZE}
 * bytes. When the fds were truncated (the kernel set `MSG_CTRUNC`, or more
 * than `maxFds` arrived), all the fds that did arrive are closed, `fds` is
 * empty and `truncated` is true: a partial set is never handed out. On
 * failure `bytes` is -errno.
 *
 * @example
 * ```ts ignore
 * import { recvFds } from "./msghdr.ts";
 * const { bytes, fds, truncated } = recvFds(unixSocket, new Uint8Array(64), 1);
 * ```
 */
export function recvFds(
  fd: number,
  buf: Uint8Array,
  maxFds: number,
  flags = 0,
): RecvFdsResult {
  if (!Number.isInteger(maxFds) || maxFds < 0 || maxFds > SCM_MAX_FD) {
    throw new RangeError(`Cannot receive fds: maxFds ${maxFds} is outside 0-${SCM_MAX_FD}`);
  }
  const control = new Uint8Array(Math.max(MIN_CONTROL_SIZE, CMSG_SPACE(maxFds * 4)));
  const msg = new Msghdr({ iov: new IovecArray([buf]), control });
  const bytes = msg.recvmsg(fd, flags | MSG.CMSG_CLOEXEC);
  if (bytes < 0) return { bytes, fds: [], truncated: false };
  const fds: number[] = [];
  for (const cmsg of msg.controlMessages()) {
    if (cmsg.level !== SOL.SOCKET || cmsg.type !== SCM.RIGHTS) continue;
    const view = new DataView(cmsg.data.buffer, cmsg.data.byteOffset, cmsg.data.byteLength);
    for (let i = 0; i + 4 <= cmsg.data.byteLength; i += 4) fds.push(view.getInt32(i, true));
  }
  const truncated = (msg.flags & MSG.CTRUNC) !== 0 || fds.length > maxFds;
  if (truncated) {
    for (const received of fds) close(received);
    return { bytes, fds: [], truncated };
  }
  return { bytes, fds, truncated };
}

/**
 * {@linkcode sendFds} that throws an `ErrnoError` ("Cannot sendmsg: ...")
 * instead of returning -errno.
 *
 * @example
 * ```ts ignore
 * import { sendFdsOrThrow } from "./msghdr.ts";
 * sendFdsOrThrow(unixSocket, [fd], new Uint8Array([0]));
 * ```
 */
export function sendFdsOrThrow(
  fd: number,
  fds: readonly number[],
  data: Uint8Array,
  flags: number = MSG.NOSIGNAL,
): number {
  return check("sendmsg", sendFds(fd, fds, data, flags));
}

/**
 * {@linkcode recvFds} that throws an `ErrnoError` ("Cannot recvmsg: ...")
 * instead of returning -errno in `bytes`. Truncation is still reported by
 * `truncated` (the data bytes were consumed and are in `buf`).
 *
 * @example
 * ```ts ignore
 * import { recvFdsOrThrow } from "./msghdr.ts";
 * const { bytes, fds } = recvFdsOrThrow(unixSocket, new Uint8Array(16), 4);
 * ```
 */
export function recvFdsOrThrow(
  fd: number,
  buf: Uint8Array,
  maxFds: number,
  flags = 0,
): RecvFdsResult {
  const result = recvFds(fd, buf, maxFds, flags);
  check("recvmsg", result.bytes);
  return result;
}
