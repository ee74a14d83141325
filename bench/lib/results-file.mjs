// bench/results/<date>.json as written: valid JSON with one line per top-level field and one line
// per element of a list (a row, an idle-session set, a target), so a diff between two runs shows
// which rows changed, and the file stays a few hundred lines instead of thousands.

/** `data` (a plain object) as that JSON text; fields whose value is undefined are left out, as JSON.stringify does. */
export function resultsJson(data) {
  const fields = Object.entries(data)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const key = JSON.stringify(k);
      if (!Array.isArray(v) || v.length === 0) return `  ${key}: ${JSON.stringify(v)}`;
      return `  ${key}: [\n${v.map((e) => `    ${JSON.stringify(e) ?? "null"}`).join(",\n")}\n  ]`;
    });
  return `{\n${fields.join(",\n")}\n}\n`;
}
