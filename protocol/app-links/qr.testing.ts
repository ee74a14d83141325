// Reading QR codes back, as a phone's camera would: for the QR tests and the CLI's `device links --qr`.
import assert from "node:assert/strict";
import jsQR from "jsqr";

/** Scans a module matrix the way a camera sees it: 6 pixels a module, a white margin, jsQR. */
export function scan(modules: boolean[][]): string | undefined {
  const scale = 6;
  const margin = 4 * scale;
  const size = modules.length * scale + 2 * margin;
  const rgba = new Uint8ClampedArray(size * size * 4).fill(255);
  modules.forEach((row, r) =>
    row.forEach((dark, c) => {
      if (!dark) return;
      for (let y = 0; y < scale; y++) {
        for (let x = 0; x < scale; x++) {
          const i = ((margin + r * scale + y) * size + margin + c * scale + x) * 4;
          rgba[i] = rgba[i + 1] = rgba[i + 2] = 0;
        }
      }
    })
  );
  return jsQR(rgba, size, size, { inversionAttempts: "dontInvert" })?.data;
}

/** Reads terminal output back into modules: ANSI colours per ▀, or the plain half-block glyphs. */
export function modulesFromTerminal(text: string, ansi: boolean): boolean[][] {
  const rows: boolean[][] = [];
  for (const line of text.split("\n")) {
    const top: boolean[] = [];
    const bottom: boolean[] = [];
    if (ansi) {
      let fgDark = false;
      let bgDark = false;
      // "ESC[" starts each colour change: its SGR codes up to "m", then the glyphs drawn in it.
      line.split("\x1b[").forEach((part, i) => {
        const end = i === 0 ? -1 : part.indexOf("m");
        for (const code of part.slice(0, Math.max(end, 0)).split(";")) {
          if (code === "30") fgDark = true;
          if (code === "97") fgDark = false;
          if (code === "40") bgDark = true;
          if (code === "107") bgDark = false;
        }
        for (const glyph of part.slice(end + 1)) {
          assert.equal(glyph, "\u2580");
          top.push(fgDark);
          bottom.push(bgDark);
        }
      });
    } else {
      for (const ch of line) {
        const [t, b] = { "\u2588": [false, false], "\u2580": [false, true], "\u2584": [true, false], " ": [true, true] }[ch]!;
        top.push(t!);
        bottom.push(b!);
      }
    }
    rows.push(top, bottom);
  }
  return rows;
}

/** Every QR code in terminal output: consecutive lines of half blocks (plain, no colours), scanned in order. */
export function scanTerminalCodes(text: string): (string | undefined)[] {
  const codes: string[][] = [];
  let inCode = false;
  for (const line of text.split("\n")) {
    const isCode = line.length > 0 && /^[\u2580\u2584\u2588 ]+$/.test(line);
    if (isCode && !inCode) codes.push([]);
    if (isCode) codes.at(-1)!.push(line);
    inCode = isCode;
  }
  return codes.map((lines) => scan(modulesFromTerminal(lines.join("\n"), false)));
}
