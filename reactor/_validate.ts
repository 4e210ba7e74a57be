/**
 * Option checks shared by the reactor's classes: every option is checked
 * before any resource is taken, and a bad one is a `RangeError` (or
 * `TypeError`) naming the action and the option. Internal (not exported by
 * `mod.ts`).
 *
 * @module
 */

/**
 * An integer option in `[min, max]`, or `fallback` when undefined.
 *
 * @example
 * ```ts
 * import { integerOption } from "./_validate.ts";
 * integerOption("listen", "backlog", undefined, 511, 0, 65535); // 511
 * ```
 */
export function integerOption(
  action: string,
  name: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot ${action}: ${name} ${describe(value)} is not an integer in ${min}-${max}`,
    );
  }
  return value;
}

/** Bounds for {@linkcode finiteOption}. */
export interface FiniteBounds {
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound. */
  above?: number;
  /** Inclusive upper bound. */
  max: number;
}

/**
 * A finite number option within bounds, or `fallback` when undefined.
 *
 * @example
 * ```ts
 * import { finiteOption } from "./_validate.ts";
 * finiteOption("create reactor", "sliceMs", 5, 2, { above: 0, max: 60_000 }); // 5
 * ```
 */
export function finiteOption(
  action: string,
  name: string,
  value: unknown,
  fallback: number,
  bounds: FiniteBounds,
): number {
  if (value === undefined) return fallback;
  const { min, above, max } = bounds;
  if (
    typeof value !== "number" || !Number.isFinite(value) || value > max ||
    (min !== undefined && value < min) || (above !== undefined && value <= above)
  ) {
    const low = above !== undefined ? `> ${above}` : `>= ${min}`;
    throw new RangeError(
      `Cannot ${action}: ${name} ${describe(value)} is not a finite number ${low} and <= ${max}`,
    );
  }
  return value;
}

/**
 * A boolean option, or `fallback` when undefined.
 *
 * @example
 * ```ts
 * import { booleanOption } from "./_validate.ts";
 * booleanOption("listen", "reusePort", undefined, false); // false
 * ```
 */
export function booleanOption(
  action: string,
  name: string,
  value: unknown,
  fallback: boolean,
): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") {
    throw new TypeError(`Cannot ${action}: ${name} ${describe(value)} is not a boolean`);
  }
  return value;
}

/**
 * An optional `AbortSignal`, checked, and thrown from at once when it has
 * already aborted (before the caller takes any resource).
 *
 * @example
 * ```ts
 * import { signalOption } from "./_validate.ts";
 * signalOption("connect", new AbortController().signal);
 * ```
 */
export function signalOption(action: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) {
    throw new TypeError(`Cannot ${action}: signal is not an AbortSignal`);
  }
  value.throwIfAborted();
  return value;
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}
