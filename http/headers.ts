/**
 * {@linkcode HttpHeaders}: the header fields of a parsed request, as a flat
 * list of lowercase names and values.
 *
 * @module
 */

/**
 * The header fields of a request, in arrival order, names lowercased.
 * Lookups scan a flat array, which is faster than a map for the handful of
 * fields a request carries.
 *
 * @example
 * ```ts
 * import { HttpHeaders } from "./headers.ts";
 * const headers = new HttpHeaders(["host", "example.com", "accept", "*\/*"]);
 * console.log(headers.get("Host"), headers.size); // "example.com" 2
 * ```
 */
export class HttpHeaders {
  readonly #list: readonly string[];

  /**
   * Wrap a flat list of fields.
   *
   * @param list Alternating lowercase names and values:
   * `[name0, value0, name1, value1, ...]`. Kept, not copied.
   */
  constructor(list: readonly string[] = []) {
    this.#list = list;
  }

  /** The number of header fields. */
  get size(): number {
    return this.#list.length >> 1;
  }

  /**
   * The value of the field `name` (any case), the values of repeated fields
   * joined with `", "`, or `null` when there is none.
   */
  get(name: string): string | null {
    const key = name.toLowerCase();
    const list = this.#list;
    let found: string | null = null;
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === key) {
        found = found === null ? list[i + 1]! : `${found}, ${list[i + 1]!}`;
      }
    }
    return found;
  }

  /** The values of every field named `name` (any case), in order. */
  getAll(name: string): string[] {
    const key = name.toLowerCase();
    const list = this.#list;
    const out: string[] = [];
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === key) out.push(list[i + 1]!);
    }
    return out;
  }

  /** Whether a field named `name` (any case) is present. */
  has(name: string): boolean {
    const key = name.toLowerCase();
    const list = this.#list;
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === key) return true;
    }
    return false;
  }

  /**
   * The fields as a new array of `[name, value]` pairs, in arrival order
   * (e.g. to build a web `Headers`).
   *
   * @example
   * ```ts
   * import { HttpHeaders } from "./headers.ts";
   * const h = new Headers(new HttpHeaders(["host", "a"]).pairs());
   * console.log(h.get("host")); // "a"
   * ```
   */
  pairs(): [string, string][] {
    const list = this.#list;
    const out: [string, string][] = new Array(list.length >> 1);
    for (let i = 0, j = 0; i < list.length; i += 2, j++) out[j] = [list[i]!, list[i + 1]!];
    return out;
  }

  /** The `[name, value]` pairs, in arrival order. */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    const list = this.#list;
    for (let i = 0; i < list.length; i += 2) yield [list[i]!, list[i + 1]!];
  }

  /** Shows the fields in `console.log` and `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](inspect: (value: unknown) => string): string {
    return `HttpHeaders ${inspect(Object.fromEntries(this))}`;
  }
}
