/**
 * Passing file descriptors over Unix sockets with `SCM_RIGHTS`: one
 * `sendmsg(2)` / `recvmsg(2)` through the {@linkcode Msghdr} codec.
 * {@linkcode recvFds} reports `truncated` when the kernel cut the fds off
 * (`MSG_CTRUNC`) and never hands out a partial set.
 *
 * @module
 */
import { MSG, SCM, SOL } from "./constants.ts";
import { check } from "./errno.ts";
import { CMSG_SPACE, IovecArray, Msghdr, writeControlMessage } from "./msghdr.ts";
import { close } from "./syscalls.ts";
import { byteLengthOf, checkInteger } from "./_view.ts";

/** `SCM_MAX_FD`: the most fds one `SCM_RIGHTS` message may carry. */
export const SCM_MAX_FD = 253;
/** The smallest control buffer {@linkcode recvFds} uses, in bytes. */
export const MIN_CONTROL_SIZE = 64;
/** Bytes of one fd (`int`) in an `SCM_RIGHTS` message. */
const FD_BYTES = 4;

function checkFds(fds: readonly number[]): void {
  if (fds.length > SCM_MAX_FD) {
    throw new RangeError(
      `Cannot send fds: ${fds.length} fds exceed SCM_MAX_FD (${SCM_MAX_FD})`,
    );
  }
  for (const fd of fds) checkInteger("send fds", "fd", fd, 0, 0x7fff_ffff);
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
 * ```ts
 * import { recvFds, sendFds } from "@ffinet/ffinet/ffi";
 * import { ErrnoError } from "@ffinet/ffinet/ffi";
 * import { Socket } from "@ffinet/ffinet/ffi";
 * import { sys } from "@ffinet/ffinet/ffi";
 * const [unixSocket, peer] = Socket.pair();
 * using listener = Socket.create("inet", "stream");
 * const n = sendFds(unixSocket.fd, [listener.fd], new Uint8Array([1]));
 * if (n < 0) throw new ErrnoError("sendmsg", -n);
 * const { fds } = recvFds(peer.fd, new Uint8Array(1), 1);
 * for (const fd of fds) sys.close(fd); // a duplicate of listener.fd
 * unixSocket.close();
 * peer.close();
 * ```
 */
export function sendFds(
  fd: number,
  fds: readonly number[],
  data: Uint8Array,
  flags: number = MSG.NOSIGNAL,
): number {
  if (byteLengthOf("send fds", "data", data) === 0) {
    throw new RangeError("Cannot send fds: data must hold at least one byte");
  }
  checkFds(fds);
  const iov = new IovecArray([data]);
  if (fds.length === 0) return new Msghdr({ iov }).sendmsg(fd, flags);
  const space = CMSG_SPACE(fds.length * FD_BYTES);
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
 * ```ts
 * import { recvFds, sendFds } from "@ffinet/ffinet/ffi";
 * import { Socket } from "@ffinet/ffinet/ffi";
 * import { sys } from "@ffinet/ffinet/ffi";
 * const [unixSocket, peer] = Socket.pair();
 * sendFds(peer.fd, [0], new Uint8Array([1])); // a copy of stdin
 * const { bytes, fds, truncated } = recvFds(unixSocket.fd, new Uint8Array(64), 1);
 * if (truncated) console.log("fds were cut off (MSG_CTRUNC)");
 * for (const fd of fds) sys.close(fd);
 * unixSocket.close();
 * peer.close();
 * ```
 */
export function recvFds(
  fd: number,
  buf: Uint8Array,
  maxFds: number,
  flags = 0,
): RecvFdsResult {
  checkInteger("receive fds", "maxFds", maxFds, 0, SCM_MAX_FD);
  const control = new Uint8Array(Math.max(MIN_CONTROL_SIZE, CMSG_SPACE(maxFds * FD_BYTES)));
  const msg = new Msghdr({ iov: new IovecArray([buf]), control });
  const bytes = msg.recvmsg(fd, flags | MSG.CMSG_CLOEXEC);
  if (bytes < 0) return { bytes, fds: [], truncated: false };
  const fds: number[] = [];
  for (const cmsg of msg.controlMessages()) {
    if (cmsg.level !== SOL.SOCKET || cmsg.type !== SCM.RIGHTS) continue;
    const view = new DataView(cmsg.data.buffer, cmsg.data.byteOffset, cmsg.data.byteLength);
    for (let i = 0; i + FD_BYTES <= cmsg.data.byteLength; i += FD_BYTES) {
      fds.push(view.getInt32(i, true));
    }
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
 * ```ts
 * import { recvFdsOrThrow, sendFdsOrThrow } from "@ffinet/ffinet/ffi";
 * import { Socket } from "@ffinet/ffinet/ffi";
 * import { sys } from "@ffinet/ffinet/ffi";
 * const [unixSocket, peer] = Socket.pair();
 * sendFdsOrThrow(unixSocket.fd, [1], new Uint8Array([0])); // a copy of stdout
 * for (const fd of recvFdsOrThrow(peer.fd, new Uint8Array(1), 1).fds) sys.close(fd);
 * unixSocket.close();
 * peer.close();
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
 * ```ts
 * import { recvFdsOrThrow } from "@ffinet/ffinet/ffi";
 * import { Socket } from "@ffinet/ffinet/ffi";
 * const [unixSocket, peer] = Socket.pair();
 * peer.write(new Uint8Array([7]));
 * const { bytes, fds } = recvFdsOrThrow(unixSocket.fd, new Uint8Array(16), 4); // 1, []
 * unixSocket.close();
 * peer.close();
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
