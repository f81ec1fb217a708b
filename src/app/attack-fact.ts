// What alert rules read of a committed event: the few fields of its normalised attack record
// (src/analytics) the alerts domain matches on, so the two domains need not know each other.
import { normaliseEvent, type AttackRecord, type StoredEvent } from '../analytics/index.js';
import type { AttackFact } from '../alerts/index.js';

/** The fields alert rules read, from the normalised attack record of a committed event (exported for bench/alerts.ts). */
export function attackFact(e: StoredEvent & { receivedAt: number }, normalise: (e: StoredEvent) => Readonly<AttackRecord> = normaliseEvent): AttackFact {
  const r = normalise(e);
  return {
    eventId: e.id,
    node: e.node,
    potId: e.potId,
    potType: e.potType,
    type: r.type,
    receivedAt: e.receivedAt,
    srcIp: r.src_ip,
    login: r.login,
    username: r.ssh_username,
    password: r.ssh_password,
    url: r.url,
    md5: r.md5,
    sha256: r.sha256,
  };
}
