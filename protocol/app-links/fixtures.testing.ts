// One device identity and the hostile display names every app-link test runs through.
import type { AppIdentity } from "./identity.ts";

export const IDENTITY: AppIdentity = {
  name: "Alice's phone",
  host: "gw.example.com",
  port: 443,
  path: "/AbCdEf0123456789_-xyz",
  cipher: "chacha20-ietf-poly1305",
  secret: `pa"ss 'w#rd: {x} \\ ; = & % / + \n`,
};

/** Names that would break hand-written YAML, URLs or headers if anything were left unquoted. */
export const HOSTILE_NAMES: readonly string[] = [
  `quote " and ' apostrophe`,
  "new\nline\r\nand return",
  "# not a comment",
  "key: value",
  "{flow: [map, seq]}",
  "- list item",
  "--- document",
  "... end",
  "*alias &anchor !tag |literal >folded @at `tick",
  "null",
  "true",
  "0x1F",
  "1e3",
  "~",
  "<<",
  "emoji 📱 ünïcødé 中文 עברית",
  "a&b=c#d?e%41/f",
  "back\\slash \\n",
  "tab\there",
  "line\u2028separator\u2029paragraph",
  "next\u0085line",
  "del\u007f c1\u009b bom\ufeff nonchar\uffff",
  "nul\u0000 bell\u0007 esc\u001b[31m",
  "lone \ud800 surrogate",
  "x".repeat(300),
];
