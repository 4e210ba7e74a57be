/**
 * The two helpers every raw libc call in ffi/ shares: the one EINTR-retry
 * test and the conversion to the kernel's `>= 0` / `-errno` convention.
 * Private; `syscalls.ts` re-exports them.
 *
 * @module
 */
import { EINTR, errnoCell } from "./errno.ts";

/**
 * Whether a raw libc result `r` failed with EINTR (read errno at once,
 * before any other call): the one EINTR-retry test, used as
 * `do r = libc.x(...); while (interrupted(r));`.
 *
 * @example
 * ```ts
 * import { interrupted, result } from "./syscalls.ts";
 * import { libc } from "@ffinet/ffinet/ffi";
 * let r: number;
 * do r = libc.dup2(1, 1); while (interrupted(r));
 * result(r); // 1
 * ```
 */
export function interrupted(r: number): boolean {
  return r < 0 && errnoCell[0] === EINTR;
}

/**
 * A raw libc result in the kernel's convention: `r` when `>= 0`, else
 * `-errno` (read at once, before any other call).
 *
 * @example
 * ```ts
 * import { result } from "./syscalls.ts";
 * import { libc } from "@ffinet/ffinet/ffi";
 * result(libc.close(-1)); // -9 (-EBADF)
 * ```
 */
export function result(r: number): number {
  return r >= 0 ? r : -errnoCell[0]!;
}
