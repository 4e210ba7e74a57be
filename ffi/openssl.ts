/**
 * The OpenSSL 3 symbol tables (`libssl.so.3`, `libcrypto.so.3`), loaded by
 * one `Deno.dlopen` each on first use, and the constants and `ctrl` macros
 * ffinet's TLS layer uses.
 *
 * Every entry carries its C prototype beside it. Pointers to OpenSSL objects
 * (`SSL_CTX *`, `SSL *`, `BIO *`, `X509 *` …) are `"pointer"`; memory ffinet
 * owns is `"buffer"`. OpenSSL calls back into JavaScript (the
 * `Deno.UnsafeCallback`s of `openssl_context.ts`) only from inside
 * `SSL_do_handshake`, synchronously on the calling thread.
 *
 * These symbols check nothing: a length over a buffer or a freed pointer
 * corrupts memory. The typed wrappers in `openssl_bio.ts`,
 * `openssl_x509.ts`, `openssl_context.ts` and `openssl_ssl.ts` check every
 * length against its view first and are the surface the TLS layer uses.
 *
 * Many OpenSSL "functions" are macros over `SSL_CTX_ctrl` / `SSL_ctrl` /
 * `BIO_ctrl`; each one ffinet uses has its own named wrapper here
 * ({@linkcode ctxSetMinProtoVersion}, {@linkcode ctxSetMode} …), so a
 * command number appears in exactly one place.
 *
 * @module
 */

/** The libcrypto symbols ffinet binds, with their C prototypes. */
export const cryptoSymbols = {
  // unsigned long ERR_get_error(void);
  ERR_get_error: { parameters: [], result: "u64" },
  // void ERR_error_string_n(unsigned long e, char *buf, size_t len);
  ERR_error_string_n: { parameters: ["u64", "buffer", "usize"], result: "void" },
  // void ERR_clear_error(void);
  ERR_clear_error: { parameters: [], result: "void" },
  // const BIO_METHOD *BIO_s_mem(void);
  BIO_s_mem: { parameters: [], result: "pointer" },
  // BIO *BIO_new(const BIO_METHOD *type);
  BIO_new: { parameters: ["pointer"], result: "pointer" },
  // int BIO_free(BIO *a);
  BIO_free: { parameters: ["pointer"], result: "i32" },
  // int BIO_read(BIO *b, void *data, int dlen);
  BIO_read: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  // int BIO_write(BIO *b, const void *data, int dlen);
  BIO_write: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  // long BIO_ctrl(BIO *bp, int cmd, long larg, void *parg);
  BIO_ctrl: { parameters: ["pointer", "i32", "i64", "pointer"], result: "i64" },
  // size_t BIO_ctrl_pending(BIO *b);
  BIO_ctrl_pending: { parameters: ["pointer"], result: "usize" },
  // X509 *PEM_read_bio_X509(BIO *bp, X509 **x, pem_password_cb *cb, void *u);
  PEM_read_bio_X509: {
    parameters: ["pointer", "pointer", "pointer", "pointer"],
    result: "pointer",
  },
  // EVP_PKEY *PEM_read_bio_PrivateKey(BIO *bp, EVP_PKEY **x, pem_password_cb *cb, void *u);
  //   (cb NULL and u a NUL-terminated passphrase: OpenSSL reads the passphrase from u)
  PEM_read_bio_PrivateKey: {
    parameters: ["pointer", "pointer", "pointer", "buffer"],
    result: "pointer",
  },
  // int PEM_write_bio_X509(BIO *bp, const X509 *x);
  PEM_write_bio_X509: { parameters: ["pointer", "pointer"], result: "i32" },
  // int i2d_X509_bio(BIO *bp, const X509 *x);
  i2d_X509_bio: { parameters: ["pointer", "pointer"], result: "i32" },
  // void X509_free(X509 *a);
  X509_free: { parameters: ["pointer"], result: "void" },
  // int X509_up_ref(X509 *a);
  X509_up_ref: { parameters: ["pointer"], result: "i32" },
  // void EVP_PKEY_free(EVP_PKEY *pkey);
  EVP_PKEY_free: { parameters: ["pointer"], result: "void" },
  // X509_NAME *X509_get_subject_name(const X509 *x);
  X509_get_subject_name: { parameters: ["pointer"], result: "pointer" },
  // X509_NAME *X509_get_issuer_name(const X509 *x);
  X509_get_issuer_name: { parameters: ["pointer"], result: "pointer" },
  // int X509_NAME_print_ex(BIO *out, const X509_NAME *nm, int indent, unsigned long flags);
  X509_NAME_print_ex: { parameters: ["pointer", "pointer", "i32", "u64"], result: "i32" },
  // const ASN1_TIME *X509_get0_notBefore(const X509 *x);
  X509_get0_notBefore: { parameters: ["pointer"], result: "pointer" },
  // const ASN1_TIME *X509_get0_notAfter(const X509 *x);
  X509_get0_notAfter: { parameters: ["pointer"], result: "pointer" },
  // int X509_cmp_current_time(const ASN1_TIME *s);   (-1 before now, 1 after, 0 error)
  X509_cmp_current_time: { parameters: ["pointer"], result: "i32" },
  // int ASN1_TIME_print(BIO *bp, const ASN1_TIME *tm);
  ASN1_TIME_print: { parameters: ["pointer", "pointer"], result: "i32" },
  // int X509_STORE_add_cert(X509_STORE *xs, X509 *x);   (takes its own reference)
  X509_STORE_add_cert: { parameters: ["pointer", "pointer"], result: "i32" },
  // const char *X509_verify_cert_error_string(long n);
  X509_verify_cert_error_string: { parameters: ["i64"], result: "pointer" },
  // int X509_VERIFY_PARAM_set1_ip_asc(X509_VERIFY_PARAM *param, const char *ipasc);
  X509_VERIFY_PARAM_set1_ip_asc: { parameters: ["pointer", "buffer"], result: "i32" },
  // int RAND_bytes(unsigned char *buf, int num);
  RAND_bytes: { parameters: ["buffer", "i32"], result: "i32" },
  // const EVP_CIPHER *EVP_aes_256_cbc(void);
  EVP_aes_256_cbc: { parameters: [], result: "pointer" },
  // int EVP_EncryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, ENGINE *impl,
  //                        const unsigned char *key, const unsigned char *iv);
  EVP_EncryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "pointer"],
    result: "i32",
  },
  // int EVP_DecryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, ENGINE *impl,
  //                        const unsigned char *key, const unsigned char *iv);
  EVP_DecryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "pointer"],
    result: "i32",
  },
  // int EVP_MAC_CTX_set_params(EVP_MAC_CTX *ctx, const OSSL_PARAM params[]);
  EVP_MAC_CTX_set_params: { parameters: ["pointer", "buffer"], result: "i32" },
  // EVP_MAC *EVP_MAC_fetch(OSSL_LIB_CTX *libctx, const char *algorithm, const char *properties);
  EVP_MAC_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  // void EVP_MAC_free(EVP_MAC *mac);
  EVP_MAC_free: { parameters: ["pointer"], result: "void" },
  // EVP_MAC_CTX *EVP_MAC_CTX_new(EVP_MAC *mac);
  EVP_MAC_CTX_new: { parameters: ["pointer"], result: "pointer" },
  // void EVP_MAC_CTX_free(EVP_MAC_CTX *ctx);
  EVP_MAC_CTX_free: { parameters: ["pointer"], result: "void" },
  // EVP_CIPHER *EVP_CIPHER_fetch(OSSL_LIB_CTX *ctx, const char *algorithm, const char *properties);
  EVP_CIPHER_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  // EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void);
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  // void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *ctx);
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  // int EVP_CipherInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, ENGINE *impl,
  //                       const unsigned char *key, const unsigned char *iv, int enc);
  EVP_CipherInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  // int EVP_CipherUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl,
  //                      const unsigned char *in, int inl);
  EVP_CipherUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  // int EVP_CipherFinal_ex(EVP_CIPHER_CTX *ctx, unsigned char *outm, int *outl);
  EVP_CipherFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // int EVP_CIPHER_CTX_ctrl(EVP_CIPHER_CTX *ctx, int type, int arg, void *ptr);
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  // const EVP_MD *EVP_sha256(void);
  EVP_sha256: { parameters: [], result: "pointer" },
  // const EVP_MD *EVP_sha384(void);
  EVP_sha384: { parameters: [], result: "pointer" },
  // unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
  //                     const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
  HMAC: {
    parameters: ["pointer", "buffer", "i32", "buffer", "usize", "buffer", "buffer"],
    result: "pointer",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The libssl symbols ffinet binds, with their C prototypes. */
export const sslSymbols = {
  // const SSL_METHOD *TLS_server_method(void);
  TLS_server_method: { parameters: [], result: "pointer" },
  // const SSL_METHOD *TLS_client_method(void);
  TLS_client_method: { parameters: [], result: "pointer" },
  // SSL_CTX *SSL_CTX_new(const SSL_METHOD *method);
  SSL_CTX_new: { parameters: ["pointer"], result: "pointer" },
  // void SSL_CTX_free(SSL_CTX *ctx);
  SSL_CTX_free: { parameters: ["pointer"], result: "void" },
  // long SSL_CTX_ctrl(SSL_CTX *ctx, int cmd, long larg, void *parg);
  SSL_CTX_ctrl: { parameters: ["pointer", "i32", "i64", "pointer"], result: "i64" },
  // long SSL_CTX_callback_ctrl(SSL_CTX *ctx, int cmd, void (*fp)(void));
  SSL_CTX_callback_ctrl: { parameters: ["pointer", "i32", "function"], result: "i64" },
  // uint64_t SSL_CTX_set_options(SSL_CTX *ctx, uint64_t op);
  SSL_CTX_set_options: { parameters: ["pointer", "u64"], result: "u64" },
  // int SSL_CTX_set_cipher_list(SSL_CTX *ctx, const char *str);   (TLS 1.2 and below)
  SSL_CTX_set_cipher_list: { parameters: ["pointer", "buffer"], result: "i32" },
  // uint64_t SSL_CTX_get_options(const SSL_CTX *ctx);
  SSL_CTX_get_options: { parameters: ["pointer"], result: "u64" },
  // int SSL_CTX_set_num_tickets(SSL_CTX *ctx, size_t num_tickets);
  SSL_CTX_set_num_tickets: { parameters: ["pointer", "usize"], result: "i32" },
  // int SSL_CTX_get_security_level(const SSL_CTX *ctx);
  SSL_CTX_get_security_level: { parameters: ["pointer"], result: "i32" },
  // int SSL_CTX_use_certificate(SSL_CTX *ctx, X509 *x);   (takes its own reference)
  SSL_CTX_use_certificate: { parameters: ["pointer", "pointer"], result: "i32" },
  // int SSL_CTX_use_PrivateKey(SSL_CTX *ctx, EVP_PKEY *pkey);   (takes its own reference)
  SSL_CTX_use_PrivateKey: { parameters: ["pointer", "pointer"], result: "i32" },
  // int SSL_CTX_check_private_key(const SSL_CTX *ctx);
  SSL_CTX_check_private_key: { parameters: ["pointer"], result: "i32" },
  // int SSL_CTX_set_session_id_context(SSL_CTX *ctx, const unsigned char *sid_ctx,
  //                                    unsigned int sid_ctx_len);
  SSL_CTX_set_session_id_context: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  // void SSL_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb verify_callback);
  SSL_CTX_set_verify: { parameters: ["pointer", "i32", "function"], result: "void" },
  // X509_STORE *SSL_CTX_get_cert_store(const SSL_CTX *ctx);
  SSL_CTX_get_cert_store: { parameters: ["pointer"], result: "pointer" },
  // int SSL_CTX_set_default_verify_paths(SSL_CTX *ctx);
  SSL_CTX_set_default_verify_paths: { parameters: ["pointer"], result: "i32" },
  // void SSL_CTX_set_alpn_select_cb(SSL_CTX *ctx, SSL_CTX_alpn_select_cb_func cb, void *arg);
  SSL_CTX_set_alpn_select_cb: {
    parameters: ["pointer", "function", "pointer"],
    result: "void",
  },
  // int SSL_select_next_proto(unsigned char **out, unsigned char *outlen,
  //                           const unsigned char *server, unsigned int server_len,
  //                           const unsigned char *client, unsigned int client_len);
  SSL_select_next_proto: {
    parameters: ["pointer", "pointer", "buffer", "u32", "pointer", "u32"],
    result: "i32",
  },
  // int SSL_CTX_set_tlsext_ticket_key_evp_cb(SSL_CTX *ctx,
  //     int (*fp)(SSL *, unsigned char *, unsigned char *, EVP_CIPHER_CTX *, EVP_MAC_CTX *, int));
  SSL_CTX_set_tlsext_ticket_key_evp_cb: { parameters: ["pointer", "function"], result: "i32" },
  // SSL *SSL_new(SSL_CTX *ctx);
  SSL_new: { parameters: ["pointer"], result: "pointer" },
  // void SSL_free(SSL *ssl);   (frees the BIOs set with SSL_set_bio)
  SSL_free: { parameters: ["pointer"], result: "void" },
  // int SSL_clear(SSL *s);   (ready for another connection; keeps the BIOs and the SSL_CTX)
  SSL_clear: { parameters: ["pointer"], result: "i32" },
  // SSL_CTX *SSL_get_SSL_CTX(const SSL *ssl);
  SSL_get_SSL_CTX: { parameters: ["pointer"], result: "pointer" },
  // void SSL_set_bio(SSL *ssl, BIO *rbio, BIO *wbio);   (takes ownership of both)
  SSL_set_bio: { parameters: ["pointer", "pointer", "pointer"], result: "void" },
  // void SSL_set0_rbio(SSL *s, BIO *rbio);   (takes ownership; frees the previous one)
  SSL_set0_rbio: { parameters: ["pointer", "pointer"], result: "void" },
  // void SSL_set0_wbio(SSL *s, BIO *wbio);   (takes ownership; frees the previous one)
  SSL_set0_wbio: { parameters: ["pointer", "pointer"], result: "void" },
  // void SSL_set_accept_state(SSL *ssl);
  SSL_set_accept_state: { parameters: ["pointer"], result: "void" },
  // void SSL_set_connect_state(SSL *ssl);
  SSL_set_connect_state: { parameters: ["pointer"], result: "void" },
  // long SSL_ctrl(SSL *ssl, int cmd, long larg, void *parg);
  SSL_ctrl: { parameters: ["pointer", "i32", "i64", "buffer"], result: "i64" },
  // int SSL_set1_host(SSL *s, const char *hostname);
  SSL_set1_host: { parameters: ["pointer", "buffer"], result: "i32" },
  // X509_VERIFY_PARAM *SSL_get0_param(SSL *ssl);
  SSL_get0_param: { parameters: ["pointer"], result: "pointer" },
  // int SSL_set_alpn_protos(SSL *ssl, const unsigned char *protos, unsigned int protos_len);
  //   (0 on success)
  SSL_set_alpn_protos: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  // int SSL_do_handshake(SSL *ssl);
  SSL_do_handshake: { parameters: ["pointer"], result: "i32" },
  // int SSL_read(SSL *ssl, void *buf, int num);
  SSL_read: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  // int SSL_write(SSL *ssl, const void *buf, int num);
  SSL_write: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  // int SSL_shutdown(SSL *ssl);
  SSL_shutdown: { parameters: ["pointer"], result: "i32" },
  // int SSL_get_error(const SSL *ssl, int ret);
  SSL_get_error: { parameters: ["pointer", "i32"], result: "i32" },
  // int SSL_is_init_finished(const SSL *s);
  SSL_is_init_finished: { parameters: ["pointer"], result: "i32" },
  // const char *SSL_get_version(const SSL *ssl);
  SSL_get_version: { parameters: ["pointer"], result: "pointer" },
  // const SSL_CIPHER *SSL_get_current_cipher(const SSL *ssl);
  SSL_get_current_cipher: { parameters: ["pointer"], result: "pointer" },
  // const char *SSL_CIPHER_get_name(const SSL_CIPHER *cipher);
  SSL_CIPHER_get_name: { parameters: ["pointer"], result: "pointer" },
  // void SSL_get0_alpn_selected(const SSL *ssl, const unsigned char **data, unsigned int *len);
  SSL_get0_alpn_selected: { parameters: ["pointer", "buffer", "buffer"], result: "void" },
  // const char *SSL_get_servername(const SSL *s, const int type);
  SSL_get_servername: { parameters: ["pointer", "i32"], result: "pointer" },
  // SSL_CTX *SSL_set_SSL_CTX(SSL *ssl, SSL_CTX *ctx);
  SSL_set_SSL_CTX: { parameters: ["pointer", "pointer"], result: "pointer" },
  // X509 *SSL_get1_peer_certificate(const SSL *s);
  SSL_get1_peer_certificate: { parameters: ["pointer"], result: "pointer" },
  // long SSL_get_verify_result(const SSL *ssl);
  SSL_get_verify_result: { parameters: ["pointer"], result: "i64" },
  // int SSL_session_reused(const SSL *s);
  SSL_session_reused: { parameters: ["pointer"], result: "i32" },
  // void SSL_CTX_set_keylog_callback(SSL_CTX *ctx, void (*cb)(const SSL *ssl, const char *line));
  SSL_CTX_set_keylog_callback: { parameters: ["pointer", "function"], result: "void" },
  // size_t SSL_get_client_random(const SSL *ssl, unsigned char *out, size_t outlen);
  SSL_get_client_random: { parameters: ["pointer", "buffer", "usize"], result: "usize" },
  // int SSL_has_pending(const SSL *s);
  SSL_has_pending: { parameters: ["pointer"], result: "i32" },
  // void SSL_set_shutdown(SSL *ssl, int mode);
  SSL_set_shutdown: { parameters: ["pointer", "i32"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded libcrypto symbols. */
export type LibCrypto = Deno.DynamicLibrary<typeof cryptoSymbols>["symbols"];
/** The loaded libssl symbols. */
export type LibSsl = Deno.DynamicLibrary<typeof sslSymbols>["symbols"];

function open<S extends Deno.ForeignLibraryInterface>(
  file: string,
  symbols: S,
): Deno.DynamicLibrary<S> {
  if (Deno.build.os !== "linux") {
    throw new Error(`Cannot load ${file}: ffinet runs on Linux only (this is ${Deno.build.os})`);
  }
  try {
    return Deno.dlopen(file, symbols);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new Error(
        `Cannot load ${file}: ffinet needs --allow-ffi (run with \`deno run --allow-ffi\`)`,
        { cause: e },
      );
    }
    throw new Error(
      `Cannot load ${file}: ${(e as Error).message} (TLS needs OpenSSL 3: apt-get install libssl3)`,
      { cause: e },
    );
  }
}

let loaded: { crypto: LibCrypto; ssl: LibSsl } | undefined;

/**
 * The OpenSSL symbols, loaded on first use (once per isolate): programs
 * that never use TLS never open libssl.
 *
 * @example
 * ```ts
 * import { openssl } from "./openssl.ts";
 * const { ssl } = openssl();
 * console.log(ssl.TLS_server_method() !== null); // true
 * ```
 */
export function openssl(): { crypto: LibCrypto; ssl: LibSsl } {
  if (loaded === undefined) {
    const crypto = open("libcrypto.so.3", cryptoSymbols).symbols;
    const ssl = open("libssl.so.3", sslSymbols).symbols;
    loaded = { crypto, ssl };
  }
  return loaded;
}

// --- constants (openssl/ssl.h, tls1.h, prov_ssl.h, bio.h, x509.h) ---

/** Protocol versions (`TLS1_2_VERSION`, `TLS1_3_VERSION`). */
export const TLS_VERSION = { TLS1_2: 0x0303, TLS1_3: 0x0304 } as const;

/** `SSL_get_error` results. */
export const SSL_ERROR = {
  NONE: 0,
  SSL: 1,
  WANT_READ: 2,
  WANT_WRITE: 3,
  WANT_X509_LOOKUP: 4,
  SYSCALL: 5,
  ZERO_RETURN: 6,
} as const;

/** `SSL_OP_*` options (64-bit). */
export const SSL_OP = {
  ENABLE_KTLS: 1n << 3n,
  NO_TICKET: 1n << 14n,
  NO_COMPRESSION: 1n << 17n,
  CIPHER_SERVER_PREFERENCE: 1n << 22n,
  NO_RENEGOTIATION: 1n << 30n,
} as const;

/** `SSL_MODE_*` bits. */
export const SSL_MODE = {
  ENABLE_PARTIAL_WRITE: 0x1,
  ACCEPT_MOVING_WRITE_BUFFER: 0x2,
  AUTO_RETRY: 0x4,
  NO_AUTO_CHAIN: 0x8,
  RELEASE_BUFFERS: 0x10,
} as const;

/** `SSL_VERIFY_*` modes. */
export const SSL_VERIFY = { NONE: 0, PEER: 1, FAIL_IF_NO_PEER_CERT: 2 } as const;

/** What servername and ALPN callbacks return (`SSL_TLSEXT_ERR_*`). */
export const SSL_TLSEXT_ERR = { OK: 0, ALERT_WARNING: 1, ALERT_FATAL: 2, NOACK: 3 } as const;

/** `SSL_select_next_proto` results (`OPENSSL_NPN_*`). */
export const OPENSSL_NPN = { UNSUPPORTED: 0, NEGOTIATED: 1, NO_OVERLAP: 2 } as const;

/** `TLSEXT_NAMETYPE_host_name`. */
export const TLSEXT_NAMETYPE_HOST_NAME = 0;
/** `X509_V_OK`. */
export const X509_V_OK = 0;
/** `XN_FLAG_RFC2253`: "CN=a,O=b", most specific first, escaped as RFC 2253 says. */
export const XN_FLAG_RFC2253 = 0x1110317n;

/** The `SSL_CTRL_*` / `BIO_C_*` command numbers of the macros below. */
const CTRL = {
  SSL_CTRL_CHAIN_CERT: 89,
  SSL_CTRL_MODE: 33,
  SSL_CTRL_SET_SESS_CACHE_MODE: 44,
  SSL_CTRL_SET_TLSEXT_SERVERNAME_CB: 53,
  SSL_CTRL_SET_TLSEXT_HOSTNAME: 55,
  SSL_CTRL_SET_MIN_PROTO_VERSION: 123,
  SSL_CTRL_SET_MAX_PROTO_VERSION: 124,
  SSL_CTRL_GET_MIN_PROTO_VERSION: 130,
  SSL_CTRL_GET_MAX_PROTO_VERSION: 131,
  BIO_C_SET_BUF_MEM_EOF_RETURN: 130,
  BIO_CTRL_RESET: 1,
} as const;

// --- the ctrl macros, one named wrapper each (raw pointers: ffi-internal) ---

/** `SSL_CTX_set_min_proto_version(ctx, version)`: 1 on success. */
export function ctxSetMinProtoVersion(ctx: Deno.PointerObject, version: number): number {
  return Number(
    openssl().ssl.SSL_CTX_ctrl(ctx, CTRL.SSL_CTRL_SET_MIN_PROTO_VERSION, BigInt(version), null),
  );
}

/** `SSL_CTX_set_max_proto_version(ctx, version)`: 1 on success. */
export function ctxSetMaxProtoVersion(ctx: Deno.PointerObject, version: number): number {
  return Number(
    openssl().ssl.SSL_CTX_ctrl(ctx, CTRL.SSL_CTRL_SET_MAX_PROTO_VERSION, BigInt(version), null),
  );
}

/** `SSL_CTX_get_min_proto_version(ctx)`: the lowest version allowed (0: no limit). */
export function ctxGetMinProtoVersion(ctx: Deno.PointerObject): number {
  return Number(openssl().ssl.SSL_CTX_ctrl(ctx, CTRL.SSL_CTRL_GET_MIN_PROTO_VERSION, 0n, null));
}

/** `SSL_CTX_get_max_proto_version(ctx)`: the highest version allowed (0: no limit). */
export function ctxGetMaxProtoVersion(ctx: Deno.PointerObject): number {
  return Number(openssl().ssl.SSL_CTX_ctrl(ctx, CTRL.SSL_CTRL_GET_MAX_PROTO_VERSION, 0n, null));
}

/** `SSL_CTX_set_mode(ctx, mode)`: the mode bits now set. */
export function ctxSetMode(ctx: Deno.PointerObject, mode: number): number {
  return Number(openssl().ssl.SSL_CTX_ctrl(ctx, CTRL.SSL_CTRL_MODE, BigInt(mode), null));
}

/** `SSL_CTX_set_session_cache_mode(ctx, mode)`: the previous mode. */
export function ctxSetSessionCacheMode(ctx: Deno.PointerObject, mode: number): number {
  return Number(
    openssl().ssl.SSL_CTX_ctrl(ctx, CTRL.SSL_CTRL_SET_SESS_CACHE_MODE, BigInt(mode), null),
  );
}

/**
 * `SSL_CTX_add0_chain_cert(ctx, x509)`: 1 on success, after which the
 * context owns `x509` (the caller's reference passes to it).
 */
export function ctxAdd0ChainCert(ctx: Deno.PointerObject, x509: Deno.PointerObject): number {
  return Number(openssl().ssl.SSL_CTX_ctrl(ctx, CTRL.SSL_CTRL_CHAIN_CERT, 0n, x509));
}

/**
 * `SSL_CTX_set_tlsext_servername_callback(ctx, cb)` (an
 * `SSL_CTX_callback_ctrl`): the callback runs on every ClientHello, with or
 * without a server name.
 */
export function ctxSetServernameCallback(
  ctx: Deno.PointerObject,
  callback: Deno.PointerObject,
): number {
  return Number(
    openssl().ssl.SSL_CTX_callback_ctrl(ctx, CTRL.SSL_CTRL_SET_TLSEXT_SERVERNAME_CB, callback),
  );
}

/**
 * `SSL_set_tlsext_host_name(ssl, name)`: the SNI a client sends. `name` is
 * NUL-terminated (OpenSSL copies it).
 */
export function sslSetTlsextHostName(ssl: Deno.PointerObject, name: Uint8Array): number {
  return Number(
    openssl().ssl.SSL_ctrl(
      ssl,
      CTRL.SSL_CTRL_SET_TLSEXT_HOSTNAME,
      BigInt(TLSEXT_NAMETYPE_HOST_NAME),
      name,
    ),
  );
}

/**
 * `BIO_set_mem_eof_return(bio, v)`: what reading an empty memory BIO
 * returns; -1 (with the retry flag) makes "no bytes yet" a WANT_READ, never EOF.
 */
export function bioSetMemEofReturn(bio: Deno.PointerObject, v: number): number {
  return Number(openssl().crypto.BIO_ctrl(bio, CTRL.BIO_C_SET_BUF_MEM_EOF_RETURN, BigInt(v), null));
}

/** `BIO_reset(bio)` on a memory BIO: drop what it holds (1 on success). */
export function bioReset(bio: Deno.PointerObject): number {
  return Number(openssl().crypto.BIO_ctrl(bio, CTRL.BIO_CTRL_RESET, 0n, null));
}
