// One generated decoy site for the tests that need a website (the runtime adapters, the h2
// client, the gateway): a fixed seed and date, so every test file serves the same pages.
import { decoyHandler } from "./decoy.ts";
import { generateDecoySite, readDecoyInputs, type SiteFile } from "./decoy-site.ts";

export const TEST_DECOY_SEED = new TextEncoder().encode("httvps-test-decoy-seed");
export const TEST_DECOY_SINCE = new Date("2026-01-15T12:00:00Z");

export const testDecoyFiles: readonly SiteFile[] = generateDecoySite(TEST_DECOY_SEED, readDecoyInputs(), TEST_DECOY_SINCE);

/** The test site's handler. */
export const testDecoy = (): (req: Request) => Promise<Response> => decoyHandler(testDecoyFiles);

/** A file of the test site by path ("index.html"), as text. */
export function testDecoyText(path: string): string {
  const f = testDecoyFiles.find((x) => x.path === path);
  if (!f) throw new Error(`the test decoy has no ${path}`);
  return new TextDecoder().decode(f.body);
}

/** The site's name, as its home page's brand link shows it (HTML-escaped). */
export const testDecoyName = (): string => /<a class="[^"]+" href="\/">([^<]+)<\/a>/.exec(testDecoyText("index.html"))![1]!;
