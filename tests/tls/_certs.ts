/**
 * Test certificates, made at test time with the openssl CLI in a private
 * temp dir: a CA; server certificates it signs (localhost + 127.0.0.1 + ::1,
 * and b.test / *.wild.test for SNI); a client certificate; a self-signed
 * one; an expired one; an encrypted key; and an unrelated key.
 *
 * @module
 */

/** PEM texts and their file paths. */
export interface TestPki {
  dir: string;
  caCert: string;
  caPath: string;
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
  bCert: string;
  bKey: string;
  clientCert: string;
  clientKey: string;
  clientCertPath: string;
  clientKeyPath: string;
  selfCert: string;
  selfKey: string;
  expiredCert: string;
  expiredKey: string;
  encryptedKey: string;
  passphrase: string;
  otherKey: string;
  remove(): Promise<void>;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdin: "null" }).output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** Make every certificate (about a second of openssl runs). */
export async function makePki(): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-tls-" });
  const run = (args: string[]) => openssl(dir, args);
  await run([
    "req",
    "-x509",
    ...EC,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=ffinet test CA",
  ]);
  const signed = async (name: string, subj: string, san: string | undefined, days = "2") => {
    await run(["req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subj]);
    const ext = `${dir}/${name}.ext`;
    await Deno.writeTextFile(
      ext,
      san === undefined ? "extendedKeyUsage=clientAuth\n" : `subjectAltName=${san}\n`,
    );
    await run([
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      days,
      "-extfile",
      ext,
    ]);
  };
  await signed("server", "/CN=localhost", "DNS:localhost,IP:127.0.0.1,IP:::1");
  await signed("b", "/CN=b.test", "DNS:b.test,DNS:*.wild.test");
  await signed("client", "/CN=test client/O=ffinet", undefined);
  await run([
    "req",
    "-x509",
    ...EC,
    "-keyout",
    "self.key",
    "-out",
    "self.pem",
    "-days",
    "2",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ]);
  // Expired: valid for one day, ten years ago.
  await run([
    "req",
    "-x509",
    ...EC,
    "-keyout",
    "old.key",
    "-out",
    "old.pem",
    "-subj",
    "/CN=expired",
    "-not_before",
    "20100101000000Z",
    "-not_after",
    "20100102000000Z",
  ])
    .catch(async () => {
      // openssl < 3.4 has no -not_before: sign with the CA with a past start date instead.
      await run(["req", ...EC, "-keyout", "old.key", "-out", "old.csr", "-subj", "/CN=expired"]);
      await run([
        "ca",
        "-batch",
        "-selfsign",
        "-keyfile",
        "old.key",
        "-in",
        "old.csr",
        "-out",
        "old.pem",
        "-startdate",
        "20100101000000Z",
        "-enddate",
        "20100102000000Z",
        "-config",
        await caConfig(dir),
      ]);
    });
  const passphrase = "correct horse";
  await run([
    "pkey",
    "-in",
    "server.key",
    "-out",
    "enc.key",
    "-aes-256-cbc",
    "-passout",
    `pass:${passphrase}`,
  ]);
  await run([
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    "other.key",
  ]);
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    dir,
    caCert: await read("ca.pem"),
    caPath: `${dir}/ca.pem`,
    cert: await read("server.pem"),
    key: await read("server.key"),
    certPath: `${dir}/server.pem`,
    keyPath: `${dir}/server.key`,
    bCert: await read("b.pem"),
    bKey: await read("b.key"),
    clientCert: await read("client.pem"),
    clientKey: await read("client.key"),
    clientCertPath: `${dir}/client.pem`,
    clientKeyPath: `${dir}/client.key`,
    selfCert: await read("self.pem"),
    selfKey: await read("self.key"),
    expiredCert: await read("old.pem"),
    expiredKey: await read("old.key"),
    encryptedKey: await read("enc.key"),
    passphrase,
    otherKey: await read("other.key"),
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}

/** A minimal `openssl ca` configuration in `dir`. */
async function caConfig(dir: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/index.txt`, "");
  await Deno.writeTextFile(`${dir}/serial`, "1000\n");
  const path = `${dir}/ca.cnf`;
  await Deno.writeTextFile(
    path,
    `[ca]\ndefault_ca = d\n[d]\ndir = ${dir}\ndatabase = ${dir}/index.txt\n` +
      `serial = ${dir}/serial\nnew_certs_dir = ${dir}\ndefault_md = sha256\n` +
      `policy = p\n[p]\ncommonName = supplied\n`,
  );
  return path;
}

/** Whether a command exists on PATH (for tests that skip with a printed reason). */
export async function hasCommand(name: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", {
      args: ["-c", `command -v ${name}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}
