// A strict CEF:0 parser for the tests: header fields split on unescaped `|` (only `\\` and `\|`
// escapes allowed), extension as `key=value` pairs where a value runs to the next ` key=` with an
// unescaped `=` (escapes `\\`, `\=`, `\n`, `\r` only). Anything else throws.
export interface CefLine {
  prefix: string;
  version: string;
  vendor: string;
  product: string;
  deviceVersion: string;
  signatureId: string;
  name: string;
  severity: string;
  ext: Map<string, string>;
}

export function parseCef(line: string): CefLine {
  if (/[\r\n]/.test(line)) throw new Error('raw line break in a CEF line');
  const start = line.indexOf('CEF:');
  if (start < 0) throw new Error('no CEF: marker');
  const prefix = line.slice(0, start);
  let i = start + 4;
  const header: string[] = [];
  let cur = '';
  while (header.length < 7) {
    if (i >= line.length) throw new Error(`header ends after ${header.length} fields`);
    const c = line[i]!;
    if (c === '\\') {
      const n = line[i + 1];
      if (n !== '\\' && n !== '|') throw new Error(`bad header escape \\${n ?? ''} at ${i}`);
      cur += n;
      i += 2;
    } else if (c === '|') {
      header.push(cur);
      cur = '';
      i++;
    } else {
      cur += c;
      i++;
    }
  }
  const ext = new Map<string, string>();
  const rest = line.slice(i);
  // Positions of unescaped '=' decide where keys are.
  let pos = 0;
  let key: string | null = null;
  let value = '';
  const flush = () => {
    if (key === null) return;
    if (ext.has(key)) throw new Error(`duplicate key ${key}`);
    ext.set(key, value);
  };
  while (pos < rest.length) {
    if (key === null) {
      const m = /^([A-Za-z0-9_]+)=/.exec(rest.slice(pos));
      if (!m) throw new Error(`expected key at ${pos}: ${rest.slice(pos, pos + 20)}`);
      key = m[1]!;
      value = '';
      pos += m[0].length;
      continue;
    }
    const c = rest[pos]!;
    if (c === '\\') {
      const n = rest[pos + 1];
      if (n === '\\') value += '\\';
      else if (n === '=') value += '=';
      else if (n === 'n') value += '\n';
      else if (n === 'r') value += '\r';
      else throw new Error(`bad extension escape \\${n ?? ''} in ${key}`);
      pos += 2;
      continue;
    }
    if (c === '=') throw new Error(`unescaped = in the value of ${key}`);
    if (c === ' ') {
      const m = /^ ([A-Za-z0-9_]+)=/.exec(rest.slice(pos));
      if (m) {
        flush();
        key = null;
        pos += 1;
        continue;
      }
    }
    value += c;
    pos++;
  }
  flush();
  const [version, vendor, product, deviceVersion, signatureId, name, severity] = header as [string, string, string, string, string, string, string];
  return { prefix, version, vendor, product, deviceVersion, signatureId, name, severity, ext };
}
