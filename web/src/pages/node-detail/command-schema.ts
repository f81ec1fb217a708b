// The command composer's forms come from the API's own OpenAPI document (/docs/json): the request
// body schema of POST /nodes/{name}/commands lists every command and its fields, so a command the
// core learns shows up here without a console change.
export interface FieldSpec {
  name: string;
  kind: 'string' | 'boolean' | 'map';
  required: boolean;
  description?: string;
  maxLength?: number;
}
export interface CommandSpec {
  name: string;
  /** 'pot': the command's value is a pot id string; 'unit': `{}`; 'object': the fields below. */
  shape: 'pot' | 'unit' | 'object';
  description?: string;
  fields: FieldSpec[];
}

type Json = Record<string, any>;

export function commandSpecs(openapi: Json): CommandSpec[] {
  const body = openapi?.paths?.['/api/v1/nodes/{name}/commands']?.post?.requestBody?.content?.['application/json']?.schema;
  const props: Json = body?.properties?.command?.properties ?? {};
  return Object.entries(props).map(([name, s]: [string, Json]) => {
    if (s.type === 'string') return { name, shape: 'pot', description: s.description, fields: [] };
    const fields: FieldSpec[] = Object.entries((s.properties ?? {}) as Json).map(([f, fs]: [string, Json]) => ({
      name: f,
      kind: fs.type === 'boolean' ? 'boolean' : fs.type === 'object' ? 'map' : 'string',
      required: (s.required ?? []).includes(f),
      description: fs.description,
      maxLength: fs.maxLength,
    }));
    return { name, shape: fields.length === 0 ? 'unit' : 'object', description: s.description, fields };
  });
}

/** `key=value` lines into an object (for map fields such as InstallPot.config). */
export function parseMap(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const eq = t.indexOf('=');
    if (eq <= 0) throw new Error(`"${t}" is not key=value`);
    out[t.slice(0, eq).trim()] = t.slice(eq + 1).trim();
  }
  return out;
}

/** The NodeCommand body of a filled-in form. */
export function buildCommand(spec: CommandSpec, values: Record<string, string | boolean>): Record<string, unknown> {
  if (spec.shape === 'unit') return { [spec.name]: {} };
  if (spec.shape === 'pot') {
    const pot = String(values.pot_id ?? '').trim();
    if (!pot) throw new Error('pot id is required');
    return { [spec.name]: pot };
  }
  const body: Record<string, unknown> = {};
  for (const f of spec.fields) {
    const v = values[f.name];
    if (f.kind === 'boolean') body[f.name] = v === true;
    else if (f.kind === 'map') {
      const m = parseMap(String(v ?? ''));
      if (Object.keys(m).length) body[f.name] = m;
    } else {
      const s = String(v ?? '').trim();
      if (s) body[f.name] = s;
      else if (f.required) throw new Error(`${f.name} is required`);
    }
  }
  return { [spec.name]: body };
}

/**
 * Instant feedback while typing: what the core refuses whatever its allow-list (no credentials,
 * query, fragment, `..` or percent-encoding). On submit the composer asks the core itself
 * (POST /commands/check) whether the URL is on its GIT_URL_ALLOW list before sending.
 */
export function gitUrlProblem(url: string): string | undefined {
  if (!url) return undefined;
  if (/[\s;&|`$<>\\]/.test(url)) return 'git_url may not hold spaces, backslashes or shell characters';
  if (/%/.test(url)) return 'git_url may not be percent-encoded';
  if (/[?#]/.test(url)) return 'git_url may not have a query or fragment';
  if (/(^|\/)\.\.?(\/|$)/.test(url.replace(/^[a-z]+:\/\//i, ''))) return 'git_url may not have . or .. segments';
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(url) && !/^ssh:/i.test(url)) return 'git_url may not carry credentials';
  // eslint-disable-next-line no-control-regex
  if (/[^\x21-\x7e]/.test(url)) return 'git_url must be ASCII';
  return undefined;
}
