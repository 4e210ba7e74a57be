/**
 * The one option validator of every layer (ffi, reactor, http, daemon): a
 * bad number is a `RangeError` with one message format,
 *
 *     Cannot <action>: <name> <value> is not an integer from <min> to <max>
 *     Cannot <action>: <name> <value> is not a finite number > <low> and <= <max>
 *
 * (a bad boolean or signal a `TypeError` in the same "Cannot <action>: …"
 * form), thrown before anything reaches libc or takes a resource. It lives in the
 * lowest layer so that every other can import it (dependencies point
 * ffi <- reactor <- http <- daemon). Not part of the public API: no entry
 * point exports it.
 *
 * @module
 */

/**
 * `value` as text for an error message (`NaN`, `-1`, `0.5`, `"x"` …).
 *
 * @example
 * ```ts
 * import { showValue } from "./validate.ts";
 * showValue("x"); // "\"x\""
 * ```
 */
export function showValue(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/**
 * Throw a `RangeError` unless `value` is an integer from `min` to `max`:
 * "Cannot <action>: <name> <value> is not an integer from <min> to <max>".
 * Returns `value` so that a check can sit inside an expression.
 *
 * @example
 * ```ts
 * import { checkInteger } from "./validate.ts";
 * checkInteger("listen", "backlog", 511, 0, 65535); // 511
 * try {
 *   checkInteger("serve", "port", 70000, 0, 65535);
 * } catch (e) {
 *   console.log((e as RangeError).message);
 *   // Cannot serve: port 70000 is not an integer from 0 to 65535
 * }
 * ```
 */
export function checkInteger(
  action: string,
  name: string,
  value: unknown,
  min: number,
  max: number,
): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot ${action}: ${name} ${showValue(value)} is not an integer from ${min} to ${max}`,
    );
  }
  return value;
}

/**
 * An integer option from `min` to `max`, or `fallback` when it is
 * `undefined` ({@linkcode checkInteger} otherwise).
 *
 * @example
 * ```ts
 * import { integerOption } from "./validate.ts";
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
  return value === undefined ? fallback : checkInteger(action, name, value, min, max);
}

/**
 * Bounds for {@linkcode finiteOption}.
 *
 * @example
 * ```ts
 * import type { FiniteBounds } from "./validate.ts";
 * const delay: FiniteBounds = { min: 0, max: 60_000 };
 * ```
 */
export interface FiniteBounds {
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound. */
  above?: number;
  /** Inclusive upper bound. */
  max: number;
}

/**
 * A finite number option within bounds, or `fallback` when it is `undefined`:
 * "Cannot <action>: <name> <value> is not a finite number > <above> and <= <max>"
 * (or ">= <min>") otherwise.
 *
 * @example
 * ```ts
 * import { finiteOption } from "./validate.ts";
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
      `Cannot ${action}: ${name} ${showValue(value)} is not a finite number ${low} and <= ${max}`,
    );
  }
  return value;
}

/**
 * A boolean option, or `fallback` when undefined.
 *
 * @example
 * ```ts
 * import { booleanOption } from "./validate.ts";
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
    throw new TypeError(`Cannot ${action}: ${name} ${showValue(value)} is not a boolean`);
  }
  return value;
}

/**
 * An optional `AbortSignal`, checked, and thrown from at once when it has
 * already aborted (before the caller takes any resource).
 *
 * @example
 * ```ts
 * import { signalOption } from "./validate.ts";
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
