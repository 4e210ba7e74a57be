/**
 * TLS over memory BIOs for the OpenSSL binding tests: a server context from
 * PEM text, and the record pump between two in-process `Ssl`s.
 *
 * @module
 */
import { SslContext } from "../../ffi/openssl_context.ts";
import type { Ssl } from "../../ffi/openssl_ssl.ts";
import { parseCertificates, parsePrivateKey } from "../../ffi/openssl_x509.ts";

/** A server context serving the PEM certificate chain `cert` with the PEM key `key`. */
export function serverContext(cert: string, key: string): SslContext {
  const ctx = SslContext.create("server");
  const chain = parseCertificates(cert);
  try {
    using k = parsePrivateKey(key);
    ctx.useCertificate(chain, k);
  } finally {
    chain.forEach((c) => c.free());
  }
  return ctx;
}

/**
 * Drive the handshake of server `s` and client `c` to its end (at most 10
 * rounds); throws unless both completed it.
 */
export function completeHandshake(s: Ssl, c: Ssl): void {
  for (let i = 0; i < 10 && !(s.handshakeDone && c.handshakeDone); i++) {
    c.handshake();
    pump(c, s);
    s.handshake();
    pump(s, c);
  }
  if (!(s.handshakeDone && c.handshakeDone)) throw new Error("the handshake did not complete");
}

/** Move records between two Ssls until neither has output. */
export function pump(a: Ssl, b: Ssl): void {
  const buf = new Uint8Array(32 * 1024);
  for (let moved = true; moved;) {
    moved = false;
    for (const [from, to] of [[a, b], [b, a]] as const) {
      let n;
      while ((n = from.takeOutput(buf)) > 0) {
        to.feed(buf, n);
        moved = true;
      }
    }
  }
}
