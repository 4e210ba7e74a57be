/**
 * SHA-1 of short inputs (FIPS 180-4 §6.1), for the `Sec-WebSocket-Accept`
 * key only: the handshake must answer synchronously, and WebCrypto's digest
 * is asynchronous. SHA-1 is not used here for security (RFC 6455 §1.3).
 *
 * @module
 */

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

/**
 * The message schedule and the padded input of short messages, reused: a
 * handshake's digest allocates only its 20-byte result.
 */
const w = new Int32Array(80);
const PADDED_MAX = 256;
const paddedShort = new Uint8Array(PADDED_MAX);
const paddedShortView = new DataView(paddedShort.buffer);

/** The 20-byte SHA-1 digest of the first `length` bytes of `data` (all of it by default). */
export function sha1(data: Uint8Array, length: number = data.length): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > data.length) {
    throw new RangeError(`Cannot hash: length ${length} is not within the ${data.length} bytes`);
  }
  const bitLength = length * 8;
  const size = ((length + 8) >>> 6 << 6) + 64;
  let padded: Uint8Array;
  let view: DataView;
  if (size <= PADDED_MAX) {
    padded = paddedShort;
    view = paddedShortView;
    padded.fill(0, 0, size);
  } else {
    padded = new Uint8Array(size);
    view = new DataView(padded.buffer);
  }
  for (let i = 0; i < length; i++) padded[i] = data[i]!;
  padded[length] = 0x80;
  view.setUint32(size - 8, Math.floor(bitLength / 0x1_0000_0000));
  view.setUint32(size - 4, bitLength >>> 0);
  let h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476, h4 = 0xc3d2e1f0;
  for (let block = 0; block < size; block += 64) {
    for (let t = 0; t < 16; t++) w[t] = view.getInt32(block + t * 4);
    for (let t = 16; t < 80; t++) w[t] = rotl(w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!, 1);
    let a = h0, b = h1, c = h2, d = h3, e = h4;
    for (let t = 0; t < 80; t++) {
      let f: number, k: number;
      if (t < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (t < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (t < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6;
      }
      const temp = (rotl(a, 5) + f + e + k + w[t]!) | 0;
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = temp;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  const out = new Uint8Array(20);
  putWord(out, 0, h0);
  putWord(out, 4, h1);
  putWord(out, 8, h2);
  putWord(out, 12, h3);
  putWord(out, 16, h4);
  return out;
}

/** `h` big-endian at `out[at..at+4)`. */
function putWord(out: Uint8Array, at: number, h: number): void {
  out[at] = h >>> 24;
  out[at + 1] = (h >>> 16) & 0xff;
  out[at + 2] = (h >>> 8) & 0xff;
  out[at + 3] = h & 0xff;
}
