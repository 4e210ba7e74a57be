/**
 * Byte tables and string interning for the request parser (private).
 *
 * @module
 */

// ---------------------------------------------------------------------------
// Byte tables

export const CR = 13;
export const LF = 10;
export const SP = 32;
export const HTAB = 9;
export const COLON = 58;
export const SEMICOLON = 59;

/** For a tchar (RFC 9110 token character): its lowercase form; 0 otherwise. */
export const TOKEN_LOWER = new Uint8Array(256);
/** 1 for the bytes allowed in a field value: HTAB, SP, VCHAR, obs-text. */
export const VALUE_OK = new Uint8Array(256);
/** 1 for the bytes allowed in a request target: VCHAR but "#" (no fragment: RFC 9112 §3.2). */
export const TARGET_OK = new Uint8Array(256);
/** The value of a hex digit; 255 otherwise. */
export const HEX = new Uint8Array(256).fill(255);

for (let b = 0; b < 256; b++) {
  const digit = b >= 48 && b <= 57;
  const lower = b >= 97 && b <= 122;
  const upper = b >= 65 && b <= 90;
  if (digit || lower || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(b))) TOKEN_LOWER[b] = b;
  if (upper) TOKEN_LOWER[b] = b + 32;
  if (b === HTAB || (b >= 0x20 && b !== 0x7f)) VALUE_OK[b] = 1;
  if (b > 0x20 && b < 0x7f && b !== 0x23) TARGET_OK[b] = 1;
  if (digit) HEX[b] = b - 48;
  else if (lower && b <= 102) HEX[b] = b - 87;
  else if (upper && b <= 70) HEX[b] = b - 55;
}

// ---------------------------------------------------------------------------
// String interning: a direct-mapped cache of short strings, keyed by an FNV-1a
// hash computed while the bytes are validated. Each slot keeps the string and
// a copy of its bytes: a hit costs a byte comparison (much cheaper than
// comparing against the string's chars) and allocates nothing.

export const FNV_OFFSET = 0x811c9dc5 | 0;
export const FNV_PRIME = 16777619;
const INTERN_SLOTS = 2048;
const INTERN_MASK = INTERN_SLOTS - 1;
const INTERN_MAX_LEN = 128;
const internStrings: string[] = new Array<string>(INTERN_SLOTS).fill("");
const internLengths = new Int32Array(INTERN_SLOTS).fill(-1);
const internBytes = new Uint8Array(INTERN_SLOTS * INTERN_MAX_LEN);

export function decode(buf: Uint8Array, start: number, end: number): string {
  // Latin-1 decoding: one char per byte, so obs-text survives unchanged.
  return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
}

const KNOWN_NAMES = new Map(
  ["host", "connection", "content-length", "transfer-encoding", "expect", "upgrade"].map((
    name,
  ) => [name, name]),
);

/** The string of `buf[start, end)` whose FNV-1a hash is `hash`. */
export function intern(buf: Uint8Array, start: number, end: number, hash: number): string {
  const len = end - start;
  if (len > INTERN_MAX_LEN) return decode(buf, start, end);
  const slot = (hash ^ (hash >>> 13)) & INTERN_MASK;
  if (internLengths[slot] === len) {
    const base = slot * INTERN_MAX_LEN - start;
    let i = start;
    while (i < end && internBytes[base + i] === buf[i]) i++;
    if (i === end) return internStrings[slot]!;
  }
  const s = decode(buf, start, end);
  internStrings[slot] = s;
  internLengths[slot] = len;
  internBytes.set(buf.subarray(start, end), slot * INTERN_MAX_LEN);
  return s;
}

/** Like {@linkcode intern} for a token, lowercased; `hash` is of the lowercase bytes. */
export function internLower(buf: Uint8Array, start: number, end: number, hash: number): string {
  const len = end - start;
  if (len > INTERN_MAX_LEN) return decode(buf, start, end).toLowerCase();
  const slot = (hash ^ (hash >>> 13)) & INTERN_MASK;
  const base = slot * INTERN_MAX_LEN - start;
  if (internLengths[slot] === len) {
    let i = start;
    while (i < end && internBytes[base + i] === TOKEN_LOWER[buf[i]!]) i++;
    if (i === end) return internStrings[slot]!;
  }
  const lower = decode(buf, start, end).toLowerCase();
  // The literal itself for the names the parser compares against, so those
  // comparisons are pointer comparisons.
  const s = KNOWN_NAMES.get(lower) ?? lower;
  internStrings[slot] = s;
  internLengths[slot] = len;
  for (let i = start; i < end; i++) internBytes[base + i] = TOKEN_LOWER[buf[i]!]!;
  return s;
}
