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
 * import { HttpHeaders } from "@ffinet/ffinet/http";
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
   * joined with `", "` (`"; "` for `Cookie`, RFC 9110 §5.3 and RFC 6265
   * §5.4), or `null` when there is none.
   *
   * @example
   * ```ts
   * import { HttpHeaders } from "@ffinet/ffinet/http";
   * const h = new HttpHeaders(["cookie", "a=1", "x", "1", "cookie", "b=2", "x", "2"]);
   * console.log(h.get("cookie"), h.get("x")); // "a=1; b=2" "1, 2"
   * ```
   */
  get(name: string): string | null {
    const key = name.toLowerCase();
    const list = this.#list;
    const sep = key === "cookie" ? "; " : ", ";
    let found: string | null = null;
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === key) {
        found = found === null ? list[i + 1]! : found + sep + list[i + 1]!;
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
   * import { HttpHeaders } from "@ffinet/ffinet/http";
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

  /**
   * The fields as `[name, value]` pairs for a web `Headers`, with several
   * `Cookie` fields made one, joined with `"; "` where the first stood (a
   * `Headers` would join them with `", "`, which cookie parsers split
   * wrongly; RFC 9110 §5.3, RFC 6265 §5.4). Otherwise as {@linkcode pairs}.
   *
   * @example
   * ```ts
   * import { HttpHeaders } from "@ffinet/ffinet/http";
   * const h = new Headers(new HttpHeaders(["cookie", "a=1", "cookie", "b=2"]).webPairs());
   * console.log(h.get("cookie")); // "a=1; b=2"
   * ```
   */
  webPairs(): [string, string][] {
    const list = this.#list;
    let cookies = 0;
    for (let i = 0; i < list.length; i += 2) if (list[i] === "cookie") cookies++;
    if (cookies < 2) return this.pairs();
    const out: [string, string][] = [];
    let merged: [string, string] | null = null;
    for (let i = 0; i < list.length; i += 2) {
      const name = list[i]!;
      const value = list[i + 1]!;
      if (name !== "cookie") {
        out.push([name, value]);
      } else if (merged === null) {
        merged = [name, value];
        out.push(merged);
      } else {
        merged[1] += "; " + value;
      }
    }
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
