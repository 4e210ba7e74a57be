/**
 * Gather-sending a queue of chunks with one `sendmsg(2)` and `MSG_NOSIGNAL`,
 * reusing one iovec array and one `msghdr` per thread: the output path of a
 * connection, with no allocation beyond the pointer values.
 *
 * @module
 */
import { libc } from "./libc.ts";
import { interrupted, result } from "./_call.ts";
import { checkFd } from "./_validate.ts";
import { MSG } from "./constants.ts";

/** How many chunks one call sends at most. */
export const WRITEV_MAX_CHUNKS = 64;
/** `sizeof(struct iovec)` on 64-bit Linux. */
const IOVEC_BYTES = 16;
/** Offset of `iov_len` in `struct iovec`. */
const IOV_LEN_OFFSET = 8;
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
 * The chunks must stay alive during the call (they are: they are arguments).
 * Throws `RangeError` unless `first` is an integer from 0 to
 * `chunks.length` and `firstOffset` one from 0 to the first chunk's length.
 *
 * @example
 * ```ts
 * import { writevChunks } from "./writev.ts";
 * import { close, read, socketpair } from "./syscalls.ts";
 * import { AF, SOCK } from "./constants.ts";
 * const fds = new Int32Array(2);
 * socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, fds);
 * const [a, b] = [fds[0]!, fds[1]!];
 * const queue = [new TextEncoder().encode("xxhello "), new TextEncoder().encode("world")];
 * writevChunks(a, queue, 0, 2); // 11: "hello world"
 * const got = new Uint8Array(16);
 * read(b, got, got.length); // 11
 * close(a);
 * close(b);
 * ```
 */
export function writevChunks(
  fd: number,
  chunks: readonly Uint8Array[],
  first: number,
  firstOffset: number,
): number {
  checkFd("writev", fd);
  if (first >>> 0 !== first || first > chunks.length) {
    throw new RangeError(
      `Cannot writev: first chunk ${first} is not an integer from 0 to ${chunks.length}`,
    );
  }
  const firstSize = first < chunks.length ? chunks[first]!.byteLength : 0;
  if (firstOffset >>> 0 !== firstOffset || firstOffset > firstSize) {
    throw new RangeError(
      `Cannot writev: firstOffset ${firstOffset} is not an integer from 0 to ${firstSize} (the first chunk's bytes)`,
    );
  }
  const end = Math.min(chunks.length, first + WRITEV_MAX_CHUNKS);
  let count = 0;
  for (let i = first; i < end; i++) {
    const chunk = chunks[i]!;
    const skip = i === first ? firstOffset : 0;
    const len = chunk.byteLength - skip;
    if (len <= 0) continue;
    // V8 keeps small typed arrays on its movable heap; reading `.buffer`
    // moves the bytes to a fixed off-heap store first. Without it the BigInt
    // arithmetic below can trigger a scavenge that moves the bytes, and
    // the call would send stale memory (seen: a few corrupted bytes per GiB).
    void chunk.buffer;
    const p = Deno.UnsafePointer.of(chunk);
    const addr = p === null ? 0n : Deno.UnsafePointer.value(p) + BigInt(skip);
    iovView.setBigUint64(count * IOVEC_BYTES, addr, true);
    iovView.setBigUint64(count * IOVEC_BYTES + IOV_LEN_OFFSET, BigInt(len), true);
    count++;
  }
  if (count === 0) return 0;
  msghdrView.setUint32(MSG_IOVLEN_OFFSET, count, true); // the high half stays 0
  let r: number;
  do r = libc.sendmsg(fd, msghdr, MSG.NOSIGNAL); while (interrupted(r));
  return result(r);
}
