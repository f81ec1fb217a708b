// node_name is the lasting identity of a node (default: its hostname). It is used as a primary key,
// in URLs and in hpfeeds idents, so only hostname-like names are accepted.
const nodeNamePattern = /^[A-Za-z0-9._-]{1,253}$/;

export const NODE_NAME_RULE = '1-253 characters of A-Z a-z 0-9 . _ -';

export function isValidNodeName(name: unknown): name is string {
  return typeof name === 'string' && nodeNamePattern.test(name);
}

export { nodeNamePattern };
