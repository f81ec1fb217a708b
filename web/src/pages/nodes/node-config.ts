/** The ready-to-paste setup of a provisioned node: its secret file, and where to connect. */
export function nodeConfigSnippet(name: string, secret: string, origin = location.origin): string {
  const host = new URL(origin).hostname;
  const ws = origin.replace(/^http/, 'ws');
  return [
    `# On the node "${name}", in the HoneyBee node's working directory:`,
    'umask 077',
    `printf '%s\\n' '${secret}' > .honeybee_totp_secret`,
    `# Connect it as node_name "${name}" to ${host} on the node port (NODE_TCP_PORT, default 9001; TCP, NDJSON)`,
    `# or to ${ws}/ws/node (WebSocket).`,
    '# Or try it with the simulator (9001: the default node port):',
    `mkdir -p sim/${name} && printf '%s\\n' '${secret}' > sim/${name}/.honeybee_totp_secret`,
    `npx apiary node simulate --host ${host} --port 9001 --name ${name} --secret-dir sim/${name}`,
    '',
  ].join('\n');
}
