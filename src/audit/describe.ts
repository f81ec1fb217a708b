// How one API request becomes an audit entry: its action name, its target and its masked changes.
// Derived from the route pattern and the request, so every mutating route is covered without
// each route having to call the audit log itself.

/** Values under keys like these are masked wherever they appear (nested too). */
export const SECRET_KEY = /token|secret|passw|auth|key|hmac|signature|credential|cookie/i;
export const MASK = '[masked]';
/** Longest changes text stored; a longer body is cut and marked. */
export const MAX_CHANGES_CHARS = 8192;

/** Last path segments that name a verb even after a literal segment (`/commands/broadcast`). */
const VERBS = new Set(['approve', 'revoke', 'reject', 'cancel', 'rotate', 'rotate-secret', 'broadcast', 'test', 'send', 'password', 'check']);

const METHOD_VERB: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'update', DELETE: 'delete' };

/**
 * `POST /api/v1/tokens` -> `tokens.create`, `DELETE /api/v1/nodes/:name` -> `nodes.delete`,
 * `POST /api/v1/nodes/:name/approve` -> `nodes.approve`, `POST /api/v1/commands/broadcast` ->
 * `commands.broadcast`, `PATCH /api/v1/alerts/rules/:id` -> `alerts.rules.update`.
 * A last literal segment that follows a parameter, or is a known verb, is the action's verb;
 * otherwise the HTTP method gives it.
 */
export function actionFor(method: string, route: string): string {
  const segments = route.replace(/^\/api\/v\d+/, '').split('/').filter(Boolean);
  const literals = segments.filter((s) => !s.startsWith(':'));
  const last = segments[segments.length - 1];
  const beforeLast = segments[segments.length - 2];
  const lastIsVerb = last !== undefined && !last.startsWith(':') && ((beforeLast?.startsWith(':') ?? false) || VERBS.has(last));
  const base = literals.join('.') || 'root';
  if (lastIsVerb) return base;
  return `${base}.${METHOD_VERB[method] ?? method.toLowerCase()}`;
}

/**
 * The entry's target: the route's parameters (`edge-1`, `ident`, a command id), else what the
 * answer names (the id of what was created), else the body's name/ident/id.
 */
export function targetFor(params: unknown, answer: unknown, body: unknown): string | null {
  if (params && typeof params === 'object') {
    const values = Object.values(params as Record<string, unknown>).filter((v) => typeof v === 'string' && v !== '');
    if (values.length > 0) return values.join('/');
  }
  for (const source of [answer, body]) {
    if (!source || typeof source !== 'object' || Array.isArray(source)) continue;
    const o = source as Record<string, unknown>;
    for (const key of ['id', 'ident', 'name', 'batchId']) {
      const v = o[key];
      if ((typeof v === 'string' && v !== '') || typeof v === 'number') return String(v).slice(0, 256);
    }
  }
  return null;
}

/** The body as JSON text with every secret-named value replaced by MASK, cut at MAX_CHANGES_CHARS. */
export function maskedChanges(body: unknown): string | null {
  if (body === undefined || body === null) return null;
  let text: string;
  try {
    // The replacer sees every key at every depth; a key like `__proto__` is just a key here.
    text = JSON.stringify(body, (key, value) => (key !== '' && SECRET_KEY.test(key) && value !== null && value !== undefined && value !== '' ? MASK : value));
  } catch {
    return JSON.stringify({ unserialisable: true });
  }
  if (text === undefined) return null;
  if (text.length <= MAX_CHANGES_CHARS) return text;
  return JSON.stringify({ truncated: true, chars: text.length, head: text.slice(0, MAX_CHANGES_CHARS) });
}
