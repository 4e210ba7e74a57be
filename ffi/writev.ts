/**
 * Gather-writing a queue of chunks with one `writev(2)`, reusing one iovec
 * array per thread: the output path of a connection, with no allocation
 * beyond the pointer values.
 *
 * @module
 */
import { writev } from "./syscalls.ts";

/** How many chunks one call sends at most. */
export const WRITEV_MAX_CHUNKS = 64;

const iov = new Uint8Array(WRITEV_MAX_CHUNKS * 16);
const iovView = new DataView(iov.buffer);

/**
 * `writev(2)` of `chunks[first..]` (at most {@linkcode WRITEV_MAX_CHUNKS}),
 * skipping `firstOffset` bytes of the first: bytes written, or -errno.
 * The chunks must stay alive during the call (they are: they are arguments).
 *
 * @example
 * ```ts ignore
 * const n = writevChunks(fd, queue, head, headOffset);
 * ```
 */
export function writevChunks(
  fd: number,
  chunks: readonly Uint8Array[],
  first: number,
  firstOffset: number,
): number {
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
    // writev would send stale memory (seen: a few corrupted bytes per GiB).
    void chunk.buffer;
    const p = Deno.UnsafePointer.of(chunk);
    const addr = p === null ? 0n : Deno.UnsafePointer.value(p) + BigInt(skip);
    iovView.setBigUint64(count * 16, addr, true);
    iovView.setBigUint64(count * 16 + 8, BigInt(len), true);
    count++;
  }
  if (count === 0) return 0;
  return writev(fd, iov, count);
}
