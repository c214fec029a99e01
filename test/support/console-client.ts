// A browser's part in the console's sign-in, for tests over real HTTP: a cookie jar, the Origin header a
// browser sends, and the CSRF token the sign-in returns sent back in `x-csrf-token`.

export interface SetCookie {
  name: string;
  value: string;
  /** Attribute names lower-cased; `true` for flags (HttpOnly, Secure). */
  attrs: Map<string, string | true>;
}

export function parseSetCookie(header: string): SetCookie {
  const [pair = "", ...rest] = header.split(";");
  const eq = pair.indexOf("=");
  const attrs = new Map<string, string | true>();
  for (const part of rest) {
    const i = part.indexOf("=");
    if (i < 0) attrs.set(part.trim().toLowerCase(), true);
    else attrs.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attrs };
}

export interface ConsoleResponse {
  status: number;
  body: any;
  setCookies: SetCookie[];
  headers: Headers;
}

export interface RequestOptions {
  body?: unknown;
  /** Send the CSRF token from the last sign-in (default true); a string: send that instead. */
  csrf?: boolean | string;
  /** The Origin header; default this client's origin on anything but GET/HEAD (as browsers do); null: none. */
  origin?: string | null;
  headers?: Record<string, string>;
}

export class ConsoleClient {
  readonly jar = new Map<string, string>();
  csrfToken: string | undefined;

  constructor(readonly baseUrl: string) {}

  async request(method: string, path: string, o: RequestOptions = {}): Promise<ConsoleResponse> {
    const headers: Record<string, string> = { ...o.headers };
    if (this.jar.size) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join("; ");
    const origin = o.origin === undefined ? (["GET", "HEAD"].includes(method) ? null : new URL(this.baseUrl).origin) : o.origin;
    if (origin !== null) headers.origin = origin;
    const csrf = o.csrf ?? true;
    if (typeof csrf === "string") headers["x-csrf-token"] = csrf;
    else if (csrf && this.csrfToken) headers["x-csrf-token"] = this.csrfToken;
    if (o.body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(new URL(path, this.baseUrl), { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body) });
    const setCookies = res.headers.getSetCookie().map(parseSetCookie);
    for (const c of setCookies) {
      const maxAge = c.attrs.get("max-age");
      const expires = c.attrs.get("expires");
      const gone = maxAge === "0" || (typeof expires === "string" && Date.parse(expires) <= Date.now()) || c.value === "";
      if (gone) this.jar.delete(c.name);
      else this.jar.set(c.name, c.value);
    }
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: kept as text
    }
    return { status: res.status, body, setCookies, headers: res.headers };
  }

  /** Signs in; on success keeps the cookie and the CSRF token. */
  async signIn(username: string, password: string, o: Omit<RequestOptions, "body"> = {}): Promise<ConsoleResponse> {
    const r = await this.request("POST", "/console/api/session", { ...o, body: { username, password } });
    if (r.status === 200) this.csrfToken = (r.body as { csrfToken: string }).csrfToken;
    return r;
  }
}
