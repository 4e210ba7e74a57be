/**
 * The repeated-head memo (private): a parser's copy of its last bodiless
 * request head, so a byte-identical head (a benchmark's, a poller's) is
 * answered after one comparison with the same parsed request. Opt-in
 * (`HttpParserOptions.memo`): it is the low-level entry point's fast path.
 *
 * @module
 */
import type { HttpRequest } from "./request.ts";

/** Longest request head remembered. */
const MAX_MEMO_BYTES = 1024;
const EMPTY = new Uint8Array(0);

/** One connection's memo. */
export class HeadMemo {
  #bytes: Uint8Array = EMPTY;
  #len = 0;
  #request: HttpRequest | null = null;
  /** Heads parsed in full since the last hit; remembering costs a copy. */
  #misses = 0;

  /** The remembered request when `buf[pos, end)` starts with its head; its length in `hit`. */
  match(buf: Uint8Array, pos: number, end: number): HttpRequest | null {
    const len = this.#len;
    if (len === 0 || end - pos < len) return null;
    const memo = this.#bytes;
    let i = 0;
    while (i < len && memo[i] === buf[pos + i]) i++;
    if (i !== len) return null;
    this.#misses = 0;
    return this.#request;
  }

  /** The length of the remembered head. */
  get length(): number {
    return this.#len;
  }

  /**
   * A head `buf[start, end)` was parsed in full into the bodiless `request`:
   * remember it after a change of requests, and now and then while they keep
   * changing (a copy per request would cost more than the shortcut saves).
   */
  parsed(buf: Uint8Array, start: number, end: number, request: HttpRequest): void {
    const misses = ++this.#misses;
    if (!(misses <= 2 || (misses & 15) === 0)) return;
    const len = end - start;
    if (len > MAX_MEMO_BYTES) return;
    if (this.#bytes.length < len) this.#bytes = new Uint8Array(MAX_MEMO_BYTES);
    const memo = this.#bytes;
    for (let i = 0; i < len; i++) memo[i] = buf[start + i]!;
    this.#len = len;
    this.#request = request;
  }
}
