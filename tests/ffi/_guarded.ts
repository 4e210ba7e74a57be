/**
 * Guard bytes around a view, for the memory-safety tests of every binding
 * that takes a buffer: a call may write only inside the view.
 *
 * @module
 */
import { assertEquals } from "@std/assert";

/** Bytes of guard on each side of a {@linkcode Guarded} view. */
export const GUARD = 64;
/** What the guard bytes hold. */
export const PATTERN = 0xa5;

/** A `size`-byte view in the middle of guard bytes, and a check that they are intact. */
export class Guarded {
  readonly backing: Uint8Array;
  readonly view: Uint8Array;
  constructor(readonly size: number, fill = 0) {
    this.backing = new Uint8Array(GUARD + size + GUARD).fill(PATTERN);
    this.view = this.backing.subarray(GUARD, GUARD + size);
    this.view.fill(fill);
  }
  /** An `Int32Array` of `size / 4` elements over the view. */
  int32(): Int32Array {
    return new Int32Array(this.backing.buffer, GUARD, this.size / 4);
  }
  /** A `Uint32Array` of `size / 4` elements over the view. */
  uint32(): Uint32Array {
    return new Uint32Array(this.backing.buffer, GUARD, this.size / 4);
  }
  /** A `BigInt64Array` of `size / 8` elements over the view. */
  bigint64(): BigInt64Array {
    return new BigInt64Array(this.backing.buffer, GUARD, this.size / 8);
  }
  /** Throw, naming `label`, if a guard byte changed. */
  assertGuards(label = ""): void {
    for (let i = 0; i < GUARD; i++) {
      assertEquals(this.backing[i], PATTERN, `${label}: guard byte ${i - GUARD} changed`);
      assertEquals(
        this.backing[GUARD + this.size + i],
        PATTERN,
        `${label}: guard byte +${i} past the view changed`,
      );
    }
  }
}
