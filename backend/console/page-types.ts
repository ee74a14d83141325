// What the console's pages are made of: a form's fields, what a page handler is given and
// answers, and the function that registers one (console.ts's, with sign-in and CSRF checks).
import type { Context } from "hono";
import type { ConsoleApi } from "./api-client.ts";
import type { Html, Viewer } from "./html.ts";

export type Form = Record<string, string | string[]>;

/** What a page or an action is given. */
export interface PageCtx {
  c: Context;
  api: ConsoleApi;
  viewer: Viewer;
  /** A POST's fields (already checked for the CSRF token). */
  form: Form;
}

/** A page's answer: a body to wrap in the layout, or a finished Response (a redirect). */
export type PageResult = Response | { title: string; current?: string; body: Html; status?: 400 | 403 | 404 | 409 | 422 | 429 };
export type PageHandler = (p: PageCtx) => Promise<PageResult>;
export type AddRoute = (method: "get" | "post", path: string, handler: PageHandler) => void;

/** One text field of a form (the first, when it came several times). */
export const field = (f: Form, k: string): string => {
  const v = f[k];
  return (Array.isArray(v) ? v[0] : v) ?? "";
};

/** A local /admin path to go back to after an action; anything else is the fallback. */
export function backTo(f: Form, fallback: string): string {
  const b = field(f, "back");
  return /^\/admin(\/[A-Za-z0-9/_-]*)?(\?[A-Za-z0-9=&%._-]*)?$/.test(b) ? b : fallback;
}

/** Where a new device's credentials lead: the backend's hooks for its gateways' address. */
export interface DeviceLinks {
  accessKey?(d: { device_id: string; token: string; name: string }): string;
  appLinks?(d: { name: string; app: { path: string; cipher: string; secret: string } }): {
    ssconf: string;
    ss_url: string;
    subscription_url: string;
  };
}
