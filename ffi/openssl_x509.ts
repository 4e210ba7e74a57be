/**
 * Certificates (`X509 *`) and private keys (`EVP_PKEY *`) parsed from PEM
 * text, with the checks a server makes before it starts: something was
 * found, the key decrypts, the certificate is inside its validity period.
 *
 * PEM text is copied into a memory BIO first (no BIO ever points into
 * JavaScript memory). A key is never read through OpenSSL's terminal
 * prompt: without a passphrase an encrypted key is refused with a clear
 * error instead of blocking on `/dev/tty`.
 *
 * @module
 */
import { openssl, XN_FLAG_RFC2253 } from "./openssl.ts";
import { cString, MemoryBio } from "./openssl_bio.ts";
import { clearOpenSslErrors, OpenSslError, takeOpenSslErrors } from "./openssl_error.ts";

/** Whether PEM text holds an encrypted private key (PKCS#8 or the legacy header). */
function isEncryptedKey(pem: string): boolean {
  return pem.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
    /Proc-Type:\s*4,\s*ENCRYPTED/.test(pem);
}

function pemBio(action: string, pem: string): MemoryBio {
  if (typeof pem !== "string" && !(pem as unknown instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${action}: the PEM text is not a string`);
  }
  const bio = MemoryBio.create();
  const bytes = typeof pem === "string" ? new TextEncoder().encode(pem) : pem as Uint8Array;
  if (bytes.length > 0) bio.write(bytes);
  return bio;
}

/** Print something into a fresh memory BIO and return the text. */
function printed(print: (bio: Deno.PointerObject) => number): string {
  using bio = MemoryBio.create();
  if (print(bio.pointer) <= 0) {
    takeOpenSslErrors();
    return "";
  }
  return bio.readText();
}

/**
 * An X.509 certificate OpenSSL holds. Free it with
 * {@linkcode X509Certificate.free} (or `using`); contexts that use it take
 * their own reference.
 *
 * @example
 * ```ts
 * import { parseCertificates } from "./openssl_x509.ts";
 * const [leaf] = parseCertificates(Deno.readTextFileSync("cert.pem"));
 * console.log(leaf!.subject, leaf!.validTo);
 * ```
 */
export class X509Certificate implements Disposable {
  #x509: Deno.PointerObject | null;

  /** @ignore Internal: wrap an `X509 *` whose reference this object now owns. */
  constructor(x509: Deno.PointerObject) {
    this.#x509 = x509;
  }

  /** The `X509 *` (for calls inside ffi/); throws once freed. */
  get pointer(): Deno.PointerObject {
    if (this.#x509 === null) {
      throw new Deno.errors.BadResource("Cannot use certificate: it was freed");
    }
    return this.#x509;
  }

  /** The subject in RFC 2253 form, most specific first ("CN=localhost,O=Example"). */
  get subject(): string {
    const { crypto } = openssl();
    const name = crypto.X509_get_subject_name(this.pointer);
    return printed((bio) => crypto.X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253));
  }

  /** The issuer in RFC 2253 form. */
  get issuer(): string {
    const { crypto } = openssl();
    const name = crypto.X509_get_issuer_name(this.pointer);
    return printed((bio) => crypto.X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253));
  }

  /** Start of validity as OpenSSL prints it ("Dec  7 08:00:00 2026 GMT"). */
  get validFrom(): string {
    const { crypto } = openssl();
    const t = crypto.X509_get0_notBefore(this.pointer);
    return printed((bio) => crypto.ASN1_TIME_print(bio, t));
  }

  /** End of validity as OpenSSL prints it. */
  get validTo(): string {
    const { crypto } = openssl();
    const t = crypto.X509_get0_notAfter(this.pointer);
    return printed((bio) => crypto.ASN1_TIME_print(bio, t));
  }

  /**
   * Throw an `OpenSslError` ("Cannot use certificate CN=x: it expired on
   * …") unless now is inside the validity period.
   *
   * @example
   * ```ts
   * import { parseCertificates } from "./openssl_x509.ts";
   * const [leaf] = parseCertificates(Deno.readTextFileSync("cert.pem"));
   * leaf!.checkValidity("use certificate");
   * leaf!.free();
   * ```
   */
  checkValidity(action: string): void {
    const { crypto } = openssl();
    const x = this.pointer;
    const after = crypto.X509_cmp_current_time(crypto.X509_get0_notAfter(x));
    if (after < 0) {
      throw new OpenSslError(action, [], `${this.subject}: it expired on ${this.validTo}`);
    }
    const before = crypto.X509_cmp_current_time(crypto.X509_get0_notBefore(x));
    if (before > 0) {
      throw new OpenSslError(
        action,
        [],
        `${this.subject}: it is not valid before ${this.validFrom}`,
      );
    }
    if (after === 0 || before === 0) {
      throw new OpenSslError(
        action,
        undefined,
        `${this.subject}: its validity dates cannot be read`,
      );
    }
  }

  /** The DER encoding. @example `cert.toDer()` */
  toDer(): Uint8Array {
    using bio = MemoryBio.create();
    if (openssl().crypto.i2d_X509_bio(bio.pointer, this.pointer) !== 1) {
      throw new OpenSslError("encode certificate");
    }
    return bio.readAll();
  }

  /** The PEM encoding. @example `cert.toPem()` */
  toPem(): string {
    using bio = MemoryBio.create();
    if (openssl().crypto.PEM_write_bio_X509(bio.pointer, this.pointer) !== 1) {
      throw new OpenSslError("encode certificate");
    }
    return bio.readText();
  }

  /** Drop this reference (idempotent). @example `cert.free()` */
  free(): void {
    const x = this.#x509;
    if (x === null) return;
    this.#x509 = null;
    openssl().crypto.X509_free(x);
  }

  /** Free (for `using`). */
  [Symbol.dispose](): void {
    this.free();
  }
}

/**
 * Every certificate in PEM text, in order (a leaf, then its chain). Throws
 * an `OpenSslError` "Cannot load certificate: no PEM certificate found …"
 * when there is none.
 *
 * @example
 * ```ts
 * import { parseCertificates } from "./openssl_x509.ts";
 * const chain = parseCertificates(Deno.readTextFileSync("fullchain.pem"));
 * for (const c of chain) c.free();
 * ```
 */
export function parseCertificates(pem: string, action = "load certificate"): X509Certificate[] {
  const { crypto } = openssl();
  using bio = pemBio(action, pem);
  const out: X509Certificate[] = [];
  clearOpenSslErrors();
  for (;;) {
    const x = crypto.PEM_read_bio_X509(bio.pointer, null, null, null);
    if (x === null) break;
    out.push(new X509Certificate(x));
  }
  const errors = takeOpenSslErrors(); // the last read always ends with "no start line"
  if (out.length === 0) throw new OpenSslError(action, errors, "no PEM certificate found");
  return out;
}

/**
 * A private key OpenSSL holds. Free it with {@linkcode PrivateKey.free}
 * (or `using`); contexts that use it take their own reference.
 *
 * @example
 * ```ts
 * import { parsePrivateKey } from "./openssl_x509.ts";
 * using key = parsePrivateKey(Deno.readTextFileSync("key.pem"), "passphrase");
 * ```
 */
export class PrivateKey implements Disposable {
  #pkey: Deno.PointerObject | null;

  /** @ignore Internal: wrap an `EVP_PKEY *` whose reference this object now owns. */
  constructor(pkey: Deno.PointerObject) {
    this.#pkey = pkey;
  }

  /** The `EVP_PKEY *` (for calls inside ffi/); throws once freed. */
  get pointer(): Deno.PointerObject {
    if (this.#pkey === null) throw new Deno.errors.BadResource("Cannot use key: it was freed");
    return this.#pkey;
  }

  /** Drop this reference (idempotent). @example `key.free()` */
  free(): void {
    const k = this.#pkey;
    if (k === null) return;
    this.#pkey = null;
    openssl().crypto.EVP_PKEY_free(k);
  }

  /** Free (for `using`). */
  [Symbol.dispose](): void {
    this.free();
  }
}

/**
 * The first private key in PEM text (PKCS#8, PKCS#1 or SEC1), decrypted
 * with `passphrase` when it is encrypted. Throws an `OpenSslError`:
 * "Cannot load key: the key is encrypted and no passphrase was given",
 * "Cannot load key: wrong passphrase …", "Cannot load key: no PEM private
 * key found …".
 *
 * @example
 * ```ts
 * import { parsePrivateKey } from "./openssl_x509.ts";
 * parsePrivateKey(Deno.readTextFileSync("key.pem")).free();
 * ```
 */
export function parsePrivateKey(pem: string, passphrase?: string): PrivateKey {
  const action = "load key";
  if (passphrase !== undefined && typeof passphrase !== "string") {
    throw new TypeError("Cannot load key: passphrase is not a string");
  }
  const encrypted = typeof pem === "string" && isEncryptedKey(pem);
  if (encrypted && (passphrase === undefined || passphrase === "")) {
    throw new OpenSslError(action, [], "the key is encrypted and no passphrase was given");
  }
  using bio = pemBio(action, pem);
  // Never NULL: OpenSSL would then prompt on the terminal for a passphrase.
  const secret = cString(action, passphrase ?? "");
  clearOpenSslErrors();
  try {
    const k = openssl().crypto.PEM_read_bio_PrivateKey(bio.pointer, null, null, secret);
    if (k === null) {
      const errors = takeOpenSslErrors();
      throw new OpenSslError(
        action,
        errors,
        encrypted ? "wrong passphrase or damaged key" : "no PEM private key found",
      );
    }
    return new PrivateKey(k);
  } finally {
    secret.fill(0);
  }
}
