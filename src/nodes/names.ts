// node_name is the lasting identity of a node (default: its hostname). It is used as a primary key,
// in URLs and in hpfeeds idents, so only hostname-like names are accepted. "." and ".." are
// refused: in a URL path they are dot-segments that clients and proxies resolve away, so
// /nodes/.. would address another resource than the node.
const nodeNamePattern = /^(?!\.\.?$)[A-Za-z0-9._-]{1,253}$/;

export const NODE_NAME_RULE = '1-253 characters of A-Z a-z 0-9 . _ -, and not "." or ".."';

export function isValidNodeName(name: unknown): name is string {
  return typeof name === 'string' && nodeNamePattern.test(name);
}

/** Why `name` is not a valid node name (for the error a node or an operator gets). */
export function nodeNameProblem(name: string): string | undefined {
  if (nodeNamePattern.test(name)) return undefined;
  if (name === '.' || name === '..') return `"${name}" is a path dot-segment`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'contains control characters';
  if (name.length === 0) return 'is empty';
  if (name.length > 253) return `is ${name.length} characters long`;
  return 'contains characters outside A-Z a-z 0-9 . _ -';
}

export { nodeNamePattern };
