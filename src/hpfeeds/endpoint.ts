// Endpoint strings in the style the reference broker takes on its command line:
//   tcp:port=10000[:interface=IP]
//   tls:port=10001:cert=PATH:key=PATH[:interface=IP]
// Fields are separated by ':'; a literal ':' (an IPv6 address) is written '\:'. As in Twisted,
// the port may also be given positionally (`tcp:10000`). `key` defaults to `cert` (one PEM holding both).

export interface Endpoint {
  kind: 'tcp' | 'tls';
  port: number;
  /** Address to bind; undefined = every interface. */
  host?: string;
  certPath?: string;
  keyPath?: string;
}

function splitFields(spec: string): string[] {
  const fields: string[] = [];
  let current = '';
  for (let i = 0; i < spec.length; i++) {
    const ch = spec[i];
    if (ch === '\\' && i + 1 < spec.length) {
      current += spec[++i];
    } else if (ch === ':') {
      fields.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  fields.push(current);
  return fields;
}

function parsePort(value: string, spec: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new Error(`invalid port ${JSON.stringify(value)} in endpoint ${JSON.stringify(spec)}`);
  }
  return Number(value);
}

export function parseEndpoint(spec: string): Endpoint {
  const [kind, ...fields] = splitFields(spec.trim());
  if (kind !== 'tcp' && kind !== 'tls') {
    throw new Error(`endpoint ${JSON.stringify(spec)} must start with "tcp:" or "tls:"`);
  }
  const endpoint: Partial<Endpoint> & { kind: 'tcp' | 'tls' } = { kind };
  fields.forEach((field, index) => {
    const eq = field.indexOf('=');
    if (eq < 0) {
      if (index === 0 && field !== '') {
        endpoint.port = parsePort(field, spec);
        return;
      }
      throw new Error(`endpoint field ${JSON.stringify(field)} is not key=value in ${JSON.stringify(spec)}`);
    }
    const key = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (value === '') throw new Error(`endpoint field ${key} is empty in ${JSON.stringify(spec)}`);
    switch (key) {
      case 'port':
        endpoint.port = parsePort(value, spec);
        break;
      case 'interface':
        endpoint.host = value;
        break;
      case 'cert':
      case 'key':
        if (kind !== 'tls') throw new Error(`endpoint field ${key} only applies to tls: ${JSON.stringify(spec)}`);
        if (key === 'cert') endpoint.certPath = value;
        else endpoint.keyPath = value;
        break;
      default:
        throw new Error(`unknown endpoint field ${JSON.stringify(key)} in ${JSON.stringify(spec)}`);
    }
  });
  if (endpoint.port === undefined) throw new Error(`endpoint ${JSON.stringify(spec)} has no port`);
  if (kind === 'tls') {
    if (!endpoint.certPath) throw new Error(`tls endpoint ${JSON.stringify(spec)} needs cert=PATH`);
    endpoint.keyPath ??= endpoint.certPath;
  }
  return endpoint as Endpoint;
}
