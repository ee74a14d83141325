import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { qrModules, renderQrSvg, renderQrTerminal } from "./qr.ts";
import { modulesFromTerminal, scan } from "./qr.testing.ts";

const LINKS = [
  "ssconf://gw.example.com/AbCdEf0123456789_-xyz/outline#Alice's%20phone",
  "ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpBOWs0ZDdmM2g2ajhsMG4ycDRyNnQ4dzB5Mnoz@gw.example.com:443/?plugin=v2ray-plugin%3Bmode%3D" +
  "websocket%3Btls%3Bhost%3Dgw.example.com%3Bpath%3D%2FAbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfG%2Ftcp%3Bmux%3D0#%F0%9F%93%B1%20" +
  "%D0%A2%D0%B5%D0%BB%D0%B5%D1%84%D0%BE%D0%BD",
  "https://gw.example.com:8443/AbC/sub",
];

/** Reads uqr's SVG (one rect, one path of unit squares) back into modules. */
function modulesFromSvg(svg: string): boolean[][] {
  const width = Number(/viewBox="0 0 (\d+) \d+"/.exec(svg)![1]);
  const d = /<path [^>]*d="([^"]*)"/.exec(svg)![1]!;
  const squares = [...d.matchAll(/M(\d+),(\d+)h(\d+)v\3h-\3z/g)];
  assert.ok(squares.length > 0);
  const px = Number(squares[0]![3]);
  const n = width / px;
  const m = Array.from({ length: n }, () => new Array<boolean>(n).fill(false));
  for (const s of squares) m[Number(s[2]) / px]![Number(s[1]) / px] = true;
  return m;
}

describe("QR codes for app links", () => {
  for (const link of LINKS) {
    describe(link.slice(0, 40), () => {
      test("the encoded modules scan back to the link", () => {
        assert.equal(scan(qrModules(link)), link);
      });

      test("the ANSI terminal rendering scans back to the link and fits 80 columns", () => {
        const out = renderQrTerminal(link);
        const m = modulesFromTerminal(out, true);
        assert.equal(scan(m), link);
        assert.ok(m[0]!.length <= 80, `${m[0]!.length} columns`);
        assert.deepEqual(m.slice(0, qrModules(link).length), qrModules(link));
      });

      test("the plain half-block rendering scans back too (dark background), and inverted (light background)", () => {
        assert.equal(scan(modulesFromTerminal(renderQrTerminal(link, { ansi: false }), false)), link);
        const inverted = modulesFromTerminal(renderQrTerminal(link, { ansi: false, invert: true }), false);
        assert.equal(scan(inverted.map((row) => row.map((dark) => !dark)).slice(0, qrModules(link).length)), link);
      });

      test("the SVG scans back to the link", () => {
        const svg = renderQrSvg(link);
        assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox=/);
        assert.equal(scan(modulesFromSvg(svg)), link);
      });
    });
  }

  test("a blank matrix scans to nothing (the scan helper can fail)", () => {
    const m = qrModules(LINKS[0]!).map((row) => row.map(() => false));
    assert.equal(scan(m), undefined);
  });
});
