// One normalisation per committed event however many domains read it: outputs and alert rules
// both want the attack record of every committed event, on the main thread, from the same batch
// objects. Records are kept only as long as their event object lives (the batch), so nothing
// accumulates. Callers must treat a shared record as read-only (copy it to change it).
import { normaliseEvent, type AttackRecord, type StoredEvent } from './record.js';

export function sharedNormaliser(): (e: StoredEvent) => Readonly<AttackRecord> {
  const records = new WeakMap<StoredEvent, AttackRecord>();
  return (e) => {
    let r = records.get(e);
    if (r === undefined) records.set(e, (r = normaliseEvent(e)));
    return r;
  };
}
