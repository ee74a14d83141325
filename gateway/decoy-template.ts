// The few template rules deploy/decoy/'s files use, a small subset of Mustache:
//   {{name}}           the value, HTML-escaped
//   {{{name}}}         the value as it is (HTML made by the generator)
//   {{#list}}…{{/list}}  the part once per item of a list; inside, names are looked up in the
//                        item first, then outside
// A name with no value is an error: a typo in a template must not ship a site with holes.
/** A template names a value that is missing or of the wrong kind. */
export class TemplateError extends Error {
  readonly code = "bad_decoy_template";
  constructor(message: string) {
    super(`decoy template: ${message}`);
    this.name = "TemplateError";
  }
}

export type TemplateValue = string | TemplateValue[] | { [name: string]: TemplateValue };
type Scope = Record<string, TemplateValue>;

// Not the apostrophe: templates quote attributes with ", and hand-written pages leave ' alone.
const escapes: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
export const escapeHtml = (s: string): string => s.replace(/[&<>"]/g, (c) => escapes[c]!);

function lookup(scopes: Scope[], name: string): TemplateValue {
  for (let i = scopes.length - 1; i >= 0; i--) if (Object.hasOwn(scopes[i]!, name)) return scopes[i]![name]!;
  throw new TemplateError(`no value for {{${name}}}`);
}

function render(text: string, scopes: Scope[]): string {
  return text
    .replace(/\{\{#(\w+)\}\}([\s\S]*?)\{\{\/\1\}\}/g, (_, name: string, inner: string) => {
      const list = lookup(scopes, name);
      if (!Array.isArray(list)) throw new TemplateError(`{{#${name}}} is not a list`);
      return list.map((item) => render(inner, [...scopes, typeof item === "object" && !Array.isArray(item) ? item : {}])).join(
        "",
      );
    })
    .replace(/\{\{\{(\w+)\}\}\}|\{\{(\w+)\}\}/g, (_, raw: string | undefined, escaped: string | undefined) => {
      const v = lookup(scopes, (raw ?? escaped)!);
      if (typeof v !== "string") throw new TemplateError(`{{${raw ?? escaped}}} is not text`);
      return raw ? v : escapeHtml(v);
    });
}

export function renderTemplate(text: string, values: Scope): string {
  return render(text, [values]);
}
