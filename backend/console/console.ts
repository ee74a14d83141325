// The operator's console at /admin: server-rendered pages (hono/html) over the public admin API,
// a stylesheet and a small progressive-enhancement script. Sign-in opens an API session
// (POST /api/v1/auth/sign-in) whose token the browser keeps in an HttpOnly cookie; every page
// is then API requests with that token (api-client.ts), so idle expiry, roles and the audit log
// are the API's. Every POST needs this server's Origin and the session's CSRF token.
import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { html } from "hono/html";
import { secretEquals } from "../secrets.ts";
import { ApiFailure, type ApiFetch, consoleApi } from "./api-client.ts";
import { CONSOLE_CSS, CONSOLE_JS } from "./assets.ts";
import { page, type Viewer } from "./html.ts";
import { type AddRoute, type DeviceLinks, field, type Form } from "./page-types.ts";
import { devicePages } from "./pages-devices.ts";
import { ownerPages } from "./pages-owner.ts";
import { clearedCookie, csrfToken, sameOrigin, securityHeaders, sessionCookie, sessionToken } from "./security.ts";

export interface ConsoleOptions {
  /** The API app's fetch: the console's every request goes through it. */
  api: ApiFetch;
  /** The access key and app links of a new device, when the backend knows where its gateways are. */
  deviceLinks?: DeviceLinks;
}

const MAX_FORM_BYTES = 64 * 1024;

function errorPage(c: Context, viewer: Viewer | undefined, status: number, message: string) {
  c.status(status as 400);
  return c.html(page({
    title: status === 403 ? "Not allowed" : status === 404 ? "Not found" : "Something went wrong",
    viewer,
    body: html`
      <p class="error" role="alert">${message}</p>
      <p><a href="/admin/devices">Back to devices</a></p>
    `,
  }));
}

const signInRedirect = (c: Context) => {
  c.header("set-cookie", clearedCookie(c));
  return c.redirect("/admin/sign-in", 303);
};

export function consoleRoutes(app: Hono, opts: ConsoleOptions): void {
  app.use("/admin", async (c, next) => {
    await next();
    securityHeaders(c);
  });
  // The console's forms are small: a larger body is refused before it is read.
  app.use(
    "/admin/*",
    bodyLimit({
      maxSize: MAX_FORM_BYTES,
      onError: (c) => {
        securityHeaders(c);
        return errorPage(c, undefined, 413, "The form is too large.");
      },
    }),
  );
  app.use("/admin/*", async (c, next) => {
    if (c.req.method === "POST" && !sameOrigin(c)) {
      securityHeaders(c);
      return errorPage(c, undefined, 403, "This request did not come from the console's own pages (Origin check).");
    }
    await next();
    securityHeaders(c);
  });

  app.get("/admin/assets/console.css", (c) => c.body(CONSOLE_CSS, 200, { "content-type": "text/css; charset=utf-8" }));
  app.get("/admin/assets/console.js", (c) => c.body(CONSOLE_JS, 200, { "content-type": "text/javascript; charset=utf-8" }));

  // ---- sign-in and sign-out

  const signInPage = (c: Context, message?: string, status: 200 | 401 | 429 = 200) => {
    c.status(status);
    return c.html(page({
      title: "Sign in",
      body: html`<div class="signin">
${message ? html`<p class="error" role="alert">${message}</p>` : ""}
<form method="post" action="/admin/sign-in">
  <label>Account name <input name="name" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <p class="muted">or</p>
  <label>Admin token <input name="token" type="password" autocomplete="off"></label>
  <button type="submit">Sign in</button>
</form></div>`,
    }));
  };

  app.get("/admin/sign-in", (c) => signInPage(c));
  app.post("/admin/sign-in", async (c) => {
    const f = (await c.req.parseBody()) as Form;
    const token = field(f, "token");
    const body = token ? { token } : { name: field(f, "name"), password: field(f, "password") };
    try {
      const s = await consoleApi(c, opts.api, undefined).send("POST", "/api/v1/auth/sign-in", body);
      c.header("set-cookie", sessionCookie(c, s.token, new Date(s.expires_at)));
      return c.redirect(s.admin.role === "owner" ? "/admin" : "/admin/devices", 303);
    } catch (e) {
      if (!(e instanceof ApiFailure)) throw e;
      if (e.status === 429) return signInPage(c, "Too many failed sign-ins; try again later.", 429);
      return signInPage(c, "Wrong name, password or token.", 401);
    }
  });

  // ---- signed-in pages

  const add: AddRoute = (method, path, handler) => {
    app[method](path, async (c) => {
      const token = sessionToken(c);
      if (!token) return signInRedirect(c);
      const api = consoleApi(c, opts.api, token);
      let viewer: Viewer | undefined;
      try {
        const me = await api.get("/api/v1/auth/me");
        viewer = { name: me.name, role: me.role, csrf: csrfToken(token) };
        let form: Form = {};
        if (method === "post") {
          form = (await c.req.parseBody({ all: true })) as Form;
          if (!secretEquals(field(form, "_csrf"), viewer.csrf)) {
            return errorPage(c, viewer, 403, "The form's security token is missing or stale: reload the page and try again.");
          }
        }
        const out = await handler({ c, api, viewer, form });
        if (out instanceof Response) return out;
        c.status(out.status ?? 200);
        return c.html(page({ title: out.title, viewer, current: out.current, body: out.body }));
      } catch (e) {
        if (!(e instanceof ApiFailure)) throw e;
        if (e.status === 401) return signInRedirect(c);
        return errorPage(c, viewer, e.status, e.message);
      }
    });
  };

  add("post", "/admin/sign-out", async ({ c, api }) => {
    await api.send("POST", "/api/v1/auth/sign-out");
    return signInRedirect(c);
  });
  ownerPages(add);
  devicePages(add, opts.deviceLinks);
}
