// What ACME keeps in DATA_DIR, per CA directory so a staging account and its certificates never
// mix with production ones:
//
//   DATA_DIR/acme/<directory host and path>/account.key     the account's private key
//   DATA_DIR/acme/<directory host and path>/account.json    the account's URL at the CA
//   DATA_DIR/acme/<directory host and path>/<first domain>/cert.pem, key.pem
//
// Directories are 0700 and files 0600; every file is written to a temporary name and renamed,
// so a crash mid-write leaves the previous file whole.
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TlsFiles } from "../../runtime/types.ts";
import { GatewayError } from "../gateway-error.ts";

/** A folder name for a directory URL: "acme-v02.api.letsencrypt.org_directory". */
export function directoryFolder(directoryUrl: string): string {
  const u = new URL(directoryUrl);
  return `${u.host}${u.pathname}`.replace(/[^A-Za-z0-9.-]+/g, "_").replace(/^_+|_+$/g, "");
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new GatewayError("tls_unreadable", `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export class AcmeStorage {
  /** DATA_DIR/acme/<directory>. */
  readonly dir: string;

  constructor(dataDir: string, directoryUrl: string) {
    this.dir = join(dataDir, "acme", directoryFolder(directoryUrl));
  }

  private certDir(domains: readonly string[]): string {
    return join(this.dir, domains[0]!);
  }

  async accountKey(): Promise<string | undefined> {
    return readOptional(join(this.dir, "account.key"));
  }

  async accountUrl(): Promise<string | undefined> {
    const text = await readOptional(join(this.dir, "account.json"));
    try {
      return text === undefined ? undefined : (JSON.parse(text) as { url?: string }).url;
    } catch {
      return undefined; // unreadable: the CA finds the account again by its key
    }
  }

  async saveAccount(key: string, url: string | undefined): Promise<void> {
    await this.write(this.dir, "account.key", key);
    if (url) await this.write(this.dir, "account.json", JSON.stringify({ url }) + "\n");
  }

  /** The stored certificate (chain) and key for these domains, or undefined. */
  async certificate(domains: readonly string[]): Promise<TlsFiles | undefined> {
    const dir = this.certDir(domains);
    const [cert, key] = await Promise.all([readOptional(join(dir, "cert.pem")), readOptional(join(dir, "key.pem"))]);
    return cert && key ? { cert, key } : undefined;
  }

  async saveCertificate(domains: readonly string[], tls: TlsFiles): Promise<void> {
    const dir = this.certDir(domains);
    // The key first: a certificate without its key is never what a restart finds.
    await this.write(dir, "key.pem", tls.key);
    await this.write(dir, "cert.pem", tls.cert);
  }

  private async write(dir: string, name: string, text: string): Promise<void> {
    const path = join(dir, name);
    const tmp = `${path}.${crypto.randomUUID()}.tmp`;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
      await writeFile(tmp, text, { mode: 0o600 });
      await chmod(tmp, 0o600); // `mode` applies only on create and under the umask
      await rename(tmp, path);
    } catch (e) {
      throw new GatewayError(
        "tls_unwritable",
        `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
  }
}
