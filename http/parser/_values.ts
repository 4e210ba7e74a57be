/**
 * Checks of header values and chunk lines for the request parser (private):
 * run once per special header or chunk, not per byte.
 *
 * @module
 */
import { HTAB, SP, TOKEN_LOWER } from "./_tables.ts";

/** The value of a Content-Length field, `-1` when malformed. Saturates at 2^53. */
export function parseContentLength(value: string): number {
  let n = -1;
  let item = -1;
  let sawDigit = false;
  for (let i = 0; i <= value.length; i++) {
    const c = i === value.length ? 44 : value.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (item === -2) return -1; // digits after whitespace inside an item
      item = (item < 0 ? 0 : item) * 10 + (c - 48);
      if (item > 2 ** 53) item = 2 ** 53;
      sawDigit = true;
    } else if (c === SP || c === HTAB) {
      if (item >= 0) {
        if (n !== -1 && n !== item) return -1;
        n = item;
        item = -2;
      }
    } else if (c === 44) { // ","
      if (item >= 0) {
        if (n !== -1 && n !== item) return -1;
        n = item;
      }
      item = -1;
    } else {
      return -1;
    }
  }
  return sawDigit ? n : -1;
}

/** The comma-separated elements of a list-valued field, trimmed and lowercased. */
export function listElements(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(",")) {
    const s = part.trim().toLowerCase();
    if (s !== "") out.push(s);
  }
  return out;
}

/** 1 for the bytes of a reg-name (RFC 3986: unreserved, sub-delims, "%"). */
const REG_NAME_OK = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%") {
  REG_NAME_OK[c.charCodeAt(0)] = 1;
}

/**
 * Whether a Host field value is `uri-host [ ":" port ]` (RFC 9110 §7.2,
 * RFC 3986 §3.2.2): a reg-name or IPv4 address, or an IP literal in
 * brackets, then optional digits after a colon. Empty is valid (a request
 * whose target has no authority).
 */
export function isValidHost(value: string): boolean {
  if (value === lastValidHost) return true; // interned: a steady client's Host
  if (!checkHost(value)) return false;
  lastValidHost = value;
  return true;
}

let lastValidHost = "";

function checkHost(value: string): boolean {
  const n = value.length;
  let i = 0;
  if (n > 0 && value.charCodeAt(0) === 91) { // "["
    const close = value.indexOf("]");
    if (close < 2) return false;
    for (let j = 1; j < close; j++) {
      const c = value.charCodeAt(j);
      const hex = (c >= 48 && c <= 58) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) ||
        c === 46; // hex digits, ":" and "." (IPv4-mapped); IPvFuture is not accepted
      if (!hex) return false;
    }
    i = close + 1;
  } else {
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c === 58) break; // ":"
      if (c >= 128 || REG_NAME_OK[c] === 0) return false;
    }
  }
  if (i === n) return true;
  if (value.charCodeAt(i) !== 58) return false;
  for (i++; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * Check `chunk-ext` (RFC 9112 §7.1.1) in `buf[i, end)`, which starts right
 * after the chunk size: `*( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )`,
 * ext-val a token or a quoted-string. Returns false when malformed.
 */
export function isValidChunkExt(buf: Uint8Array, i: number, end: number): boolean {
  const ws = (b: number | undefined) => b === SP || b === HTAB;
  while (i < end) {
    while (i < end && ws(buf[i])) i++;
    if (i === end || buf[i] !== 59) return false; // ";" must follow (BWS alone is invalid)
    i++;
    while (i < end && ws(buf[i])) i++;
    const name = i;
    while (i < end && TOKEN_LOWER[buf[i]!] !== 0) i++;
    if (i === name) return false;
    let j = i;
    while (j < end && ws(buf[j])) j++;
    if (j < end && buf[j] === 61) { // "="
      i = j + 1;
      while (i < end && ws(buf[i])) i++;
      if (i < end && buf[i] === 34) { // quoted-string
        i++;
        for (;;) {
          if (i >= end) return false; // unbalanced quote
          const b = buf[i]!;
          if (b === 34) break;
          if (b === 92) { // quoted-pair
            i++;
            if (i >= end) return false;
            const q = buf[i]!;
            if (q !== HTAB && (q < 0x20 || q === 0x7f)) return false;
          } else if (b !== HTAB && (b < 0x20 || b === 0x7f)) {
            return false;
          }
          i++;
        }
        i++;
      } else {
        const v = i;
        while (i < end && TOKEN_LOWER[buf[i]!] !== 0) i++;
        if (i === v) return false;
      }
    } else if (j < end && buf[j] !== 59) {
      return false;
    } else if (j === end) {
      return j === i; // trailing whitespace after a name without ";" next is BWS with nothing after
    }
  }
  return true;
}
