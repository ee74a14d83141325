// QR codes for the links a person scans with a phone (`httvps device links --qr`): terminal
// text and SVG, over uqr (zero dependencies, the same output on Node, Bun and Deno).
import { encode, renderSVG } from "uqr";

/** Quiet zone in modules: the spec asks for 4; a terminal has its own dark or light margin, so 2 keeps the code narrow. */
const TERMINAL_BORDER = 2;
const SVG_BORDER = 4;

export interface QrTerminalOptions {
  /**
   * true (the default): ANSI colours, dark modules black and light ones white whatever the
   * terminal's theme. false: plain half blocks for a dark-background terminal (a light module is
   * a glyph); set `invert` for a light background.
   */
  ansi?: boolean;
  invert?: boolean;
}

/** The module matrix with its quiet zone: `true` is a dark module. */
export function qrModules(text: string, border: number = TERMINAL_BORDER): boolean[][] {
  // Medium error correction (15 %) tolerates a terminal's glare and a phone held at an angle;
  // uqr raises it further when the chosen size has room.
  return encode(text, { ecc: "M", boostEcc: true, border }).data;
}

const UPPER_HALF = "\u2580";
const LOWER_HALF = "\u2584";
const FULL = "\u2588";
const ESC = "\x1b[";

/** The code as text, two module rows per line (▀ with the upper module as foreground, the lower as background). */
export function renderQrTerminal(text: string, options: QrTerminalOptions = {}): string {
  const m = qrModules(text);
  const dark = (row: number, col: number) => m[row]?.[col] ?? false;
  const lines: string[] = [];
  for (let row = 0; row < m.length; row += 2) {
    let line = "";
    let prev = "";
    for (let col = 0; col < m.length; col++) {
      const top = dark(row, col);
      const bottom = dark(row + 1, col);
      if (options.ansi ?? true) {
        // 30/40 black, 97/107 bright white: plain 37 is grey on many themes.
        const colours = `${ESC}${top ? 30 : 97};${bottom ? 40 : 107}m`;
        if (colours !== prev) line += colours;
        prev = colours;
        line += UPPER_HALF;
      } else {
        const light = (d: boolean) => (options.invert ? d : !d);
        line += light(top) ? (light(bottom) ? FULL : UPPER_HALF) : light(bottom) ? LOWER_HALF : " ";
      }
    }
    lines.push(options.ansi ?? true ? `${line}${ESC}0m` : line);
  }
  return lines.join("\n");
}

/** The code as a standalone SVG document, black on white, 4-module quiet zone. */
export function renderQrSvg(text: string, pixelSize = 8): string {
  return renderSVG(text, { ecc: "M", boostEcc: true, border: SVG_BORDER, pixelSize });
}
