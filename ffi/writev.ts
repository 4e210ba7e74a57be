/**
 * Gather-sending a queue of chunks with one `sendmsg(2)` and `MSG_NOSIGNAL`,
 * reusing one iovec array and one `msghdr` per thread: the output path of a
 * connection, with no allocation beyond the pointer values.
 *
 * @module
 */
import { libc } from "./libc.ts";
import { interrupted, result } from "./syscalls.ts";
import { byteLengthOf, checkFd, encodeIovec } from "./_view.ts";
import { MSG } from "./constants.ts";

/** How many chunks one call sends at most. */
export const WRITEV_MAX_CHUNKS = 64;
/** `sizeof(struct iovec)` on 64-bit Linux. */
const IOVEC_BYTES = 16;
/** `sizeof(struct msghdr)` on 64-bit Linux (x86_64 and aarch64 alike). */
const MSGHDR_BYTES = 56;
/** Offsets of `msg_iov` and `msg_iovlen` in `struct msghdr`. */
const MSG_IOV_OFFSET = 16;
const MSG_IOVLEN_OFFSET = 24;

// `msghdr` is passed as a buffer (its address is taken at each call); `iov`
// is pointed to from inside it, so its bytes must never move: at 1 KiB it is
// over V8's on-heap typed array limit, and reading `.buffer` pins it off-heap
// for certain. msg_name, msg_control and msg_flags stay 0 for ever.
const iov = new Uint8Array(WRITEV_MAX_CHUNKS * IOVEC_BYTES);
void iov.buffer;
const iovView = new DataView(iov.buffer);
const msghdr = new Uint8Array(MSGHDR_BYTES);
const msghdrView = new DataView(msghdr.buffer);
msghdrView.setBigUint64(
  MSG_IOV_OFFSET,
  Deno.UnsafePointer.value(Deno.UnsafePointer.of(iov)),
  true,
);

/**
 * `sendmsg(2)` with `MSG_NOSIGNAL` of `chunks[first..]` (at most
 * {@linkcode WRITEV_MAX_CHUNKS}) as one gather write, skipping `firstOffset`
 * bytes of the first: bytes sent, or -errno. A peer that is gone gives
 * `-EPIPE` and no SIGPIPE (`writev(2)` cannot promise that). `fd` must be a
 * socket: anything else (a pipe) gives `-ENOTSOCK`.
 * The chunk list is copied before anything is checked, and each chunk's
 * size and address come from the engine's own view getters: a getter or a
 * lying subclass cannot free, shrink or resize a chunk between its check
 * and the call. Throws `RangeError` unless `first` is an integer from 0 to
 * `chunks.length` and `firstOffset` one from 0 to the first chunk's length,
 * and `TypeError` for a chunk that is not a real TypedArray or DataView.
 *
 * @example
 * ```ts
 * import { AF, SOCK, sys, writevChunks } from "@ffinet/ffinet/ffi";
 * const fds = new Int32Array(2);
 * sys.socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, fds);
 * const [a, b] = [fds[0]!, fds[1]!];
 * const queue = [new TextEncoder().encode("xxhello "), new TextEncoder().encode("world")];
 * writevChunks(a, queue, 0, 2); // 11: "hello world"
 * const got = new Uint8Array(16);
 * sys.read(b, got, got.length); // 11
 * sys.close(a);
 * sys.close(b);
 * ```
 */
export function writevChunks(
  fd: number,
  chunks: readonly Uint8Array[],
  first: number,
  firstOffset: number,
): number {
  checkFd("writev", fd);
  // Snapshot first: reading the list (a Proxy, an index getter) is the last
  // caller code that runs. Every size and address below comes from the
  // engine's own getters, so nothing can free or shrink a chunk between its
  // check and the call.
  const total = chunks.length;
  if (typeof total !== "number" || first >>> 0 !== first || first > total) {
    throw new RangeError(
      `Cannot writev: first chunk ${first} is not an integer from 0 to ${total}`,
    );
  }
  const end = Math.min(total, first + WRITEV_MAX_CHUNKS);
  const list: unknown[] = [];
  for (let i = first; i < end; i++) list.push(chunks[i]);
  const firstSize = list.length > 0 ? byteLengthOf("writev", "the first chunk", list[0]) : 0;
  if (firstOffset >>> 0 !== firstOffset || firstOffset > firstSize) {
    throw new RangeError(
      `Cannot writev: firstOffset ${firstOffset} is not an integer from 0 to ${firstSize} (the first chunk's bytes)`,
    );
  }
  let count = 0;
  for (let i = 0; i < list.length; i++) {
    const skip = i === 0 ? firstOffset : 0;
    if (encodeIovec("writev", first + i, list[i], skip, iovView, count * IOVEC_BYTES) > 0) count++;
  }
  if (count === 0) return 0;
  msghdrView.setUint32(MSG_IOVLEN_OFFSET, count, true); // the high half stays 0
  let r: number;
  do r = libc.sendmsg(fd, msghdr, MSG.NOSIGNAL); while (interrupted(r));
  // `list` holds the chunks (and so their buffers) alive until here.
  list.length = 0;
  return result(r);
}
