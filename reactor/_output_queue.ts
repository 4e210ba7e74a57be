/**
 * A connection's output queue: the chunks the kernel could not take at
 * once, sent in order with `send` (one chunk) or `sendmsg` (several), never
 * copying them again. Internal to `Connection` (not exported by
 * `mod.ts`).
 *
 * @module
 */
import { MSG } from "../ffi/constants.ts";
import { EAGAIN } from "../ffi/errno.ts";
import * as sys from "../ffi/syscalls.ts";
import { writevChunks } from "../ffi/writev.ts";

/** Compact the chunk array once this many sent chunks sit before the head. */
const COMPACT_AFTER = 1024;

/** Queued chunks and how far the first unsent one has gone. */
export class OutputQueue {
  #chunks: Uint8Array[] = [];
  #head = 0; // index of the first unsent chunk
  #headOffset = 0; // bytes of chunks[head] already sent
  #bytes = 0;
  /** The call that failed in the last {@linkcode OutputQueue.flush}, if any. */
  failedCall: "send" | "sendmsg" = "send";

  /** Bytes queued. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Queue a chunk (the caller hands over ownership: copy it first if it may change). */
  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.byteLength;
  }

  /** Drop everything queued. */
  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#headOffset = 0;
    this.#bytes = 0;
  }

  /**
   * Send queued bytes to `fd` until the queue is empty or the kernel pushes
   * back (EAGAIN). Returns the bytes sent, or -errno when a call failed
   * (bytes sent before the failure are counted in `sentBeforeError`).
   */
  flush(fd: number): number {
    let sent = 0;
    this.sentBeforeError = 0;
    while (this.#bytes > 0) {
      const count = this.#chunks.length - this.#head;
      let n: number;
      if (count === 1) {
        const chunk = this.#chunks[this.#head]!;
        const rest = this.#headOffset === 0 ? chunk : chunk.subarray(this.#headOffset);
        n = sys.send(fd, rest, rest.byteLength, MSG.NOSIGNAL);
      } else {
        n = writevChunks(fd, this.#chunks, this.#head, this.#headOffset);
      }
      if (n === -EAGAIN || n === 0) break;
      if (n < 0) {
        this.failedCall = count === 1 ? "send" : "sendmsg";
        this.sentBeforeError = sent;
        return n;
      }
      sent += n;
      this.#advance(n);
    }
    if (this.#bytes === 0) {
      this.#chunks.length = 0;
      this.#head = 0;
      this.#headOffset = 0;
    } else if (this.#head > COMPACT_AFTER) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    return sent;
  }

  /** Bytes sent by the last {@linkcode OutputQueue.flush} before it failed. */
  sentBeforeError = 0;

  /** Step over `n` sent bytes: whole chunks, then part of the next. */
  #advance(n: number): void {
    this.#bytes -= n;
    let left = n;
    while (left > 0) {
      const chunk = this.#chunks[this.#head]!;
      const remain = chunk.byteLength - this.#headOffset;
      if (left >= remain) {
        left -= remain;
        this.#chunks[this.#head] = undefined as unknown as Uint8Array;
        this.#head++;
        this.#headOffset = 0;
      } else {
        this.#headOffset += left;
        left = 0;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Corking: a connection's second and later writes of one turn of the loop.

/** The most bytes a connection corks before it sends them at once. */
export const CORK_LIMIT = 64 * 1024;

/**
 * The write turns of this thread: `epoch` counts flushes of corked writes
 * (at the end of each turn of Deno's event loop that corked any, and after
 * each batch of a reactor's loop); `writes` counts `write()` calls (the run
 * loop tells by it whether the app wrote while it was parked).
 */
export const writeTurns = { epoch: 0, writes: 0 };

type Flusher<T> = (owner: T) => void;
const corkedOwners: unknown[] = [];
const corkedFlushers: Flusher<never>[] = [];
let flushScheduled = false;
const spareCorks: Uint8Array[] = [];

/**
 * Have `flush(owner)` called once this turn's microtasks have run: by a
 * `setImmediate`, or sooner by a reactor's run loop at the end of its batch
 * (before it waits).
 */
export function deferFlush<T>(owner: T, flush: Flusher<T>): void {
  corkedOwners.push(owner);
  corkedFlushers.push(flush as Flusher<never>);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushScheduledCorked);
  }
}

/** Flush every corked connection; a new write turn starts. */
export function flushCorked(): void {
  writeTurns.epoch++;
  if (corkedOwners.length === 0) return;
  // A flush may cork again (an onDrain that writes twice): those join this pass.
  for (let i = 0; i < corkedOwners.length; i++) {
    (corkedFlushers[i] as Flusher<unknown>)(corkedOwners[i]);
  }
  corkedOwners.length = 0;
  corkedFlushers.length = 0;
}

/** The scheduled flush (it may find the loop has flushed already). */
function flushScheduledCorked(): void {
  flushScheduled = false;
  flushCorked();
}

/** A cork buffer of {@linkcode CORK_LIMIT} bytes (reused). */
export function takeCork(): Uint8Array {
  return spareCorks.pop() ?? new Uint8Array(CORK_LIMIT);
}

/** Give a cork buffer back once nothing refers to its bytes. */
export function returnCork(cork: Uint8Array): void {
  if (spareCorks.length < 8) spareCorks.push(cork);
}
