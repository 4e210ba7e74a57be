/**
 * `CLOCK_MONOTONIC` in microseconds, as systemd's `MONOTONIC_USEC=` wants
 * it: a timerfd on that clock is armed at an absolute time far ahead, and
 * the kernel's `/proc/self/fdinfo` line `it_value: (s, ns)` says how far
 * ahead that still is; now is the difference. Private to `daemon/`.
 *
 * @module
 */
import { TFD } from "../../ffi/constants.ts";
import { readProcFile } from "../../ffi/process.ts";
import { close, timerfd_create, timerfd_settime } from "../../ffi/syscalls.ts";

const FAR_SECONDS = 1n << 40n;

/**
 * The current `CLOCK_MONOTONIC` time in microseconds, or null when it
 * cannot be read.
 *
 * @example
 * ```ts
 * import { monotonicUsec } from "./_monotonic.ts";
 * console.log(monotonicUsec()); // e.g. 494599395n
 * ```
 */
export function monotonicUsec(): bigint | null {
  let fd = -1;
  try {
    fd = timerfd_create(TFD.CLOCK_MONOTONIC, TFD.CLOEXEC);
    if (fd < 0) return null;
    const spec = new BigInt64Array([0n, 0n, FAR_SECONDS, 0n]);
    if (timerfd_settime(fd, TFD.TIMER_ABSTIME, spec) < 0) return null;
    const m = /it_value:\s*\((\d+),\s*(\d+)\)/.exec(readProcFile(`/proc/self/fdinfo/${fd}`));
    if (m === null) return null;
    const left = BigInt(m[1]!) * 1_000_000_000n + BigInt(m[2]!);
    return (FAR_SECONDS * 1_000_000_000n - left) / 1000n;
  } catch {
    return null;
  } finally {
    if (fd >= 0) close(fd);
  }
}
