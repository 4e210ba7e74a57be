/**
 * `struct iovec`, `struct msghdr` and `struct cmsghdr` codecs for the 64-bit
 * Linux ABIs ffinet supports (x86_64 and aarch64, both little-endian). Fd
 * passing over Unix sockets with `SCM_RIGHTS` (`sendFds`, `recvFds`) lives in
 * `fd_passing.ts`, which builds on these codecs (this module imports
 * neither it nor `syscalls.ts`, so neither import forms a cycle).
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
 * These structs hold raw addresses of `Uint8Array`s, so {@linkcode IovecArray}
 * and {@linkcode Msghdr} never let them out of their hands: they keep the
 * arrays referenced, encode the addresses and lengths from the arrays'
 * current views right before each call (a detached or shrunk buffer then
 * counts as empty, never as its old memory), and hand out only copies of
 * the encoded bytes. Sizes, offsets and buffers are read through the
 * engine's own view getters, never a caller's, so no caller code runs
 * between encoding and the call; the count of iovecs is the object's own,
 * and the calls go through the class's own methods whatever a subclass
 * overrides.
 *
 * @module
 */
import { libc } from "./libc.ts";
import {
  addressOf,
  byteLengthOf,
  bytesOf,
  checkFd,
  checkInteger,
  encodeIovec,
  interrupted,
  result,
  UINT32_MAX,
} from "./_view.ts";

/** `sizeof(struct iovec)` on 64-bit Linux. */
export const IOVEC_SIZE = 16;
/** `sizeof(struct msghdr)` on 64-bit Linux. */
export const MSGHDR_SIZE = 56;
/** `sizeof(struct cmsghdr)` on 64-bit Linux: where a control message's data starts. */
export const CMSGHDR_SIZE = 16;
/** `IOV_MAX`: the most iovecs one `readv`/`writev`/`sendmsg` accepts. */
export const IOV_MAX = 1024;

/**
 * `CMSG_ALIGN(len)`: `len` rounded up to the 8-byte alignment of control
 * messages.
 *
 * @example
 * ```ts
 * import { CMSG_ALIGN } from "@ffinet/ffinet/ffi";
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
 * import { CMSG_SPACE } from "@ffinet/ffinet/ffi";
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
 * import { CMSG_LEN } from "@ffinet/ffinet/ffi";
 * CMSG_LEN(4); // 20
 * ```
 */
export function CMSG_LEN(len: number): number {
  return CMSG_ALIGN(CMSGHDR_SIZE) + len;
}

/** Offset of `iov_len` in `struct iovec`. */
const IOV_LEN_OFFSET = 8;
/** Offsets in `struct msghdr` (LP64). */
const MSG_NAME = 0, MSG_NAMELEN = 8, MSG_IOV = 16, MSG_IOVLEN = 24;
const MSG_CONTROL = 32, MSG_CONTROLLEN = 40, MSG_FLAGS = 48;

/**
 * A {@linkcode Msghdr}'s way to an `IovecArray`'s iovecs encoded as of now
 * and their count: its private state, whatever a subclass overrides.
 */
let encodeIovecs: (iov: IovecArray) => [Uint8Array, number];

/** Objects a call in progress points at: a GC root while the call runs. */
const pins: unknown[] = [];

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
 * The object keeps every array it points at referenced and encodes their
 * current addresses and lengths right before each call
 * ({@linkcode IovecArray.readv}, {@linkcode IovecArray.writev}, or `readv` /
 * `writev` / `Msghdr` in the other modules), so no call reaches outside the
 * slices, even after a buffer was detached, transferred or shrunk.
 *
 * @example Gather-write three chunks in one call
 * ```ts
 * import { IovecArray } from "@ffinet/ffinet/ffi";
 * import { Socket } from "@ffinet/ffinet/ffi";
 * const [sock, peer] = Socket.pair();
 * const fd = sock.fd;
 * const enc = new TextEncoder();
 * const iov = new IovecArray([
 *   enc.encode("HTTP/1.1 200 OK\r\n"),
 *   { data: enc.encode("xxContent-Length: 2\r\n\r\n"), offset: 2 },
 *   enc.encode("hi"),
 * ]);
 * const n = iov.writev(fd); // bytes written, or -errno
 * sock.close();
 * peer.close();
 * ```
 */
export class IovecArray {
  #chunks: readonly ArrayBufferView[];
  #buffer: Uint8Array;
  #view: DataView;
  #total: number;

  /**
   * Encode `chunks` in order. Throws `RangeError` when a slice lies outside
   * its array or there are more than {@linkcode IOV_MAX} chunks.
   */
  constructor(chunks: ReadonlyArray<Uint8Array | IovecChunk>) {
    const count = chunks.length;
    if (typeof count !== "number" || !(count <= IOV_MAX)) {
      throw new RangeError(
        `Cannot encode iovec: ${count} chunks exceed IOV_MAX (${IOV_MAX})`,
      );
    }
    const slices: ArrayBufferView[] = [];
    let total = 0;
    for (let i = 0; i < count; i++) {
      const chunk = chunks[i]!;
      let slice: ArrayBufferView;
      if (ArrayBuffer.isView(chunk)) {
        slice = chunk; // kept as it is: a length-tracking view keeps tracking
        byteLengthOf("encode iovec", `chunk ${i}`, slice);
      } else {
        const { data, offset = 0 } = chunk;
        let { length } = chunk;
        // A fixed view of the engine's own: `data`'s getters are read once, here.
        const bytes = bytesOf("encode iovec", `chunk ${i} data`, data);
        const available = bytes.byteLength - offset;
        length ??= available;
        if (
          !Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 ||
          length > available
        ) {
          throw new RangeError(
            `Cannot encode iovec: chunk ${i} (offset ${offset}, length ${length}) is outside its ${bytes.byteLength}-byte array`,
          );
        }
        slice = bytes.subarray(offset, offset + length);
      }
      slices.push(slice);
      total += byteLengthOf("encode iovec", `chunk ${i}`, slice);
    }
    this.#chunks = Object.freeze(slices);
    this.#buffer = new Uint8Array(Math.max(1, slices.length) * IOVEC_SIZE);
    this.#view = new DataView(this.#buffer.buffer);
    this.#total = total;
    this.#encode();
  }

  /**
   * Throw `TypeError` ("Cannot <call>: iov must be an IovecArray") unless
   * `value` was built by this class's constructor (not a look-alike).
   */
  static #assert(call: string, value: unknown): asserts value is IovecArray {
    if (typeof value !== "object" || value === null || !(#chunks in value)) {
      throw new TypeError(
        `Cannot ${call}: iov must be an IovecArray (a hand-encoded iovec could point anywhere)`,
      );
    }
  }

  static {
    encodeIovecs = (iov) => {
      IovecArray.#assert("encode msghdr", iov);
      return [iov.#encode(), iov.#chunks.length];
    };
  }

  /** Write the chunks' current addresses and lengths into the iovecs; returns them. */
  #encode(): Uint8Array {
    const view = this.#view;
    for (let i = 0; i < this.#chunks.length; i++) {
      const at = i * IOVEC_SIZE;
      if (encodeIovec("encode iovec", i, this.#chunks[i], 0, view, at) === 0) {
        view.setBigUint64(at, 0n, true); // an empty (or detached) chunk: no address
        view.setBigUint64(at + IOV_LEN_OFFSET, 0n, true);
      }
    }
    return this.#buffer;
  }

  /**
   * A copy of the encoded `struct iovec[]` (addresses as of now), for
   * inspection: editing it changes nothing.
   */
  get buffer(): Uint8Array {
    return this.#encode().slice();
  }

  /** The number of iovecs (the `iovcnt` argument). */
  get count(): number {
    return this.#chunks.length;
  }

  /** The sum of all chunk lengths when encoded. */
  get totalLength(): number {
    return this.#total;
  }

  /** The slices the iovecs point at, in order. */
  get chunks(): readonly Uint8Array[] {
    return this.#chunks as readonly Uint8Array[];
  }

  /**
   * `readv(2)` into the chunks: bytes read, 0 at EOF, or -errno.
   *
   * @example
   * ```ts
   * import { IovecArray } from "@ffinet/ffinet/ffi";
   * import { Socket } from "@ffinet/ffinet/ffi";
   * const [a, b] = Socket.pair();
   * b.write(new Uint8Array(6));
   * const head = new Uint8Array(4), body = new Uint8Array(16);
   * const n = new IovecArray([head, body]).readv(a.fd); // 6
   * a.close();
   * b.close();
   * ```
   */
  readv(fd: number): number {
    IovecArray.#assert("readv", this);
    checkFd("readv", fd);
    const iov = this.#encode();
    const count = this.#chunks.length;
    pins.push(this);
    try {
      let r: number;
      do r = libc.readv(fd, iov, count); while (interrupted(r));
      return result(r);
    } finally {
      pins.pop();
    }
  }

  /**
   * `writev(2)` from the chunks: bytes written or -errno.
   *
   * @example
   * ```ts
   * import { IovecArray } from "@ffinet/ffinet/ffi";
   * import { Socket } from "@ffinet/ffinet/ffi";
   * const [a, b] = Socket.pair();
   * const head = new Uint8Array(4), body = new Uint8Array(16);
   * const n = new IovecArray([head, body]).writev(a.fd); // 20
   * a.close();
   * b.close();
   * ```
   */
  writev(fd: number): number {
    IovecArray.#assert("writev", this);
    checkFd("writev", fd);
    const iov = this.#encode();
    const count = this.#chunks.length;
    pins.push(this);
    try {
      let r: number;
      do r = libc.writev(fd, iov, count); while (interrupted(r));
      return result(r);
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
 * import { CMSG_SPACE, writeControlMessage } from "@ffinet/ffinet/ffi";
 * import { SCM, SOL } from "@ffinet/ffinet/ffi";
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
  const out = bytesOf("write control message", "control", control);
  const bytes = bytesOf("write control message", "data", data);
  const space = CMSG_SPACE(bytes.byteLength);
  if (offset % 8 !== 0 || offset < 0 || offset + space > out.byteLength) {
    throw new RangeError(
      `Cannot write control message: ${space} bytes at offset ${offset} do not fit a ${out.byteLength}-byte control buffer`,
    );
  }
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setBigUint64(offset, BigInt(CMSG_LEN(bytes.byteLength)), true);
  view.setInt32(offset + 8, level, true);
  view.setInt32(offset + 12, type, true);
  out.set(bytes, offset + CMSGHDR_SIZE);
  out.fill(0, offset + CMSG_LEN(bytes.byteLength), offset + space);
  return offset + space;
}

/**
 * Read the control messages in the first `length` bytes of `control` (the
 * `msg_controllen` the kernel reported), walking them as `CMSG_FIRSTHDR` /
 * `CMSG_NXTHDR` do and stopping at the first malformed header.
 *
 * @example
 * ```ts
 * import { CMSG_SPACE, readControlMessages, writeControlMessage } from "@ffinet/ffinet/ffi";
 * const control = new Uint8Array(CMSG_SPACE(4));
 * writeControlMessage(control, 0, 1, 1, new Uint8Array(4));
 * readControlMessages(control, control.length); // [{ level: 1, type: 1, data: ... }]
 * ```
 */
export function readControlMessages(control: Uint8Array, length: number): ControlMessage[] {
  control = bytesOf("read control messages", "control", control);
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
 * A `struct msghdr` that keeps its name, iovecs and control buffer
 * referenced and encodes their current addresses and lengths right before
 * each {@linkcode Msghdr.sendmsg} / {@linkcode Msghdr.recvmsg} (also reached
 * through `sendmsg` / `recvmsg` in `syscalls.ts`); after `recvmsg` read back
 * the lengths and flags the kernel wrote.
 *
 * @example
 * ```ts
 * import { IovecArray, Msghdr } from "@ffinet/ffinet/ffi";
 * import { Socket } from "@ffinet/ffinet/ffi";
 * const [a, b] = Socket.pair();
 * b.write(new Uint8Array([42]));
 * const buf = new Uint8Array(16);
 * const msg = new Msghdr({ iov: new IovecArray([buf]), control: new Uint8Array(64) });
 * const n = msg.recvmsg(a.fd, 0); // 1
 * if (n >= 0) console.log(msg.flags, msg.controlLength);
 * a.close();
 * b.close();
 * ```
 */
export class Msghdr {
  #header = new Uint8Array(MSGHDR_SIZE);
  #view: DataView;
  #name: Uint8Array | undefined;
  #iov: IovecArray | undefined;
  #control: Uint8Array | undefined;
  #controlLength: number;

  /** Encode the header. Throws `RangeError` for a `controlLength` beyond `control`. */
  constructor(options: MsghdrOptions = {}) {
    this.#view = new DataView(this.#header.buffer);
    const { name, iov, control } = options; // each option is read once
    const controlSize = control === undefined
      ? 0
      : byteLengthOf("encode msghdr", "control", control);
    const controlLength = options.controlLength ?? controlSize;
    checkInteger("encode msghdr", "controlLength", controlLength, 0, controlSize);
    if (name !== undefined) {
      checkInteger(
        "encode msghdr",
        "name length",
        byteLengthOf("encode msghdr", "name", name),
        0,
        UINT32_MAX,
      );
    }
    if (iov !== undefined) encodeIovecs(iov); // throws for anything but an IovecArray
    this.#name = name;
    this.#iov = iov;
    this.#control = control;
    this.#controlLength = controlLength;
    this.#encode();
  }

  /** Throw `TypeError` unless `value` was built by this class's constructor. */
  static #assert(call: string, value: unknown): asserts value is Msghdr {
    if (typeof value !== "object" || value === null || !(#header in value)) {
      throw new TypeError(
        `Cannot ${call}: msg must be a Msghdr (a hand-encoded msghdr could point anywhere)`,
      );
    }
  }

  /** Write the buffers' current addresses and lengths into the header; returns it. */
  #encode(): Uint8Array {
    const v = this.#view;
    const [nameAddress, nameLength] = this.#name === undefined
      ? [0n, 0]
      : addressOf("encode msghdr", "name", this.#name);
    v.setBigUint64(MSG_NAME, nameAddress, true);
    v.setUint32(MSG_NAMELEN, nameLength, true);
    const [iovecs, count] = this.#iov === undefined ? [null, 0] : encodeIovecs(this.#iov);
    const [iovAddress] = iovecs === null ? [0n] : addressOf("encode msghdr", "iov", iovecs);
    v.setBigUint64(MSG_IOV, iovAddress, true);
    v.setBigUint64(MSG_IOVLEN, BigInt(count), true);
    // A control buffer shrunk since the constructor counts only as far as it now goes.
    const [controlAddress, controlSize] = this.#control === undefined
      ? [0n, 0]
      : addressOf("encode msghdr", "control", this.#control);
    const controlLength = Math.min(this.#controlLength, controlSize);
    v.setBigUint64(MSG_CONTROL, controlLength === 0 ? 0n : controlAddress, true);
    v.setBigUint64(MSG_CONTROLLEN, BigInt(controlLength), true);
    v.setInt32(MSG_FLAGS, 0, true);
    return this.#header;
  }

  /**
   * A copy of the 56 header bytes as the kernel last left them (or as
   * encoded), for inspection: editing it changes nothing.
   */
  get header(): Uint8Array {
    return this.#header.slice();
  }

  /** `msg_namelen`: after `recvmsg`, the length of the sender's address. */
  get nameLength(): number {
    return this.#view.getUint32(MSG_NAMELEN, true);
  }

  /** `msg_controllen`: after `recvmsg`, the bytes of control data received. */
  get controlLength(): number {
    return Number(this.#view.getBigUint64(MSG_CONTROLLEN, true));
  }

  /** `msg_flags`: after `recvmsg`, e.g. `MSG_TRUNC` / `MSG_CTRUNC`. */
  get flags(): number {
    return this.#view.getInt32(MSG_FLAGS, true);
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
   * ```ts
   * import { IovecArray, Msghdr } from "@ffinet/ffinet/ffi";
   * import { MSG } from "@ffinet/ffinet/ffi";
   * import { Socket } from "@ffinet/ffinet/ffi";
   * const [a, b] = Socket.pair();
   * const iov = new IovecArray([new Uint8Array([1, 2])]);
   * const n = new Msghdr({ iov }).sendmsg(a.fd, MSG.NOSIGNAL); // 2
   * a.close();
   * b.close();
   * ```
   */
  sendmsg(fd: number, flags: number): number {
    Msghdr.#assert("sendmsg", this);
    checkFd("sendmsg", fd);
    const header = this.#encode();
    pins.push(this);
    try {
      let r: number;
      do r = libc.sendmsg(fd, header, flags); while (interrupted(r));
      return result(r);
    } finally {
      pins.pop();
    }
  }

  /**
   * `recvmsg(2)` with this header: bytes received, 0 at EOF, or -errno.
   *
   * @example
   * ```ts
   * import { IovecArray, Msghdr } from "@ffinet/ffinet/ffi";
   * import { MSG } from "@ffinet/ffinet/ffi";
   * import { Socket } from "@ffinet/ffinet/ffi";
   * const [a, b] = Socket.pair();
   * const msg = new Msghdr({ iov: new IovecArray([new Uint8Array(8)]) });
   * const n = msg.recvmsg(a.fd, MSG.CMSG_CLOEXEC); // -11 (-EAGAIN): nothing sent
   * a.close();
   * b.close();
   * ```
   */
  recvmsg(fd: number, flags: number): number {
    Msghdr.#assert("recvmsg", this);
    checkFd("recvmsg", fd);
    const header = this.#encode();
    pins.push(this);
    try {
      let r: number;
      do r = libc.recvmsg(fd, header, flags); while (interrupted(r));
      return result(r);
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

// The calls through these codecs are their own methods: nobody may swap them.
Object.freeze(IovecArray.prototype);
Object.freeze(Msghdr.prototype);
