// Bounded metric label values. Idents and channel names reach label values from peers (an
// in-process publisher passes node names and pot-type channels through), so each label dimension
// admits a configured set plus at most `max` other values; everything beyond folds into `other`.
// The set of admitted values never shrinks (a series, once exported, keeps its name).

export const OTHER_LABEL = 'other';

export interface LabelPolicy {
  /** Values always kept as they are (configured channels, operator-created idents). */
  known?: Iterable<string> | ((value: string) => boolean);
  /** How many values outside `known` may become label values before the rest fold into `other`. */
  max?: number;
}

export class LabelFolder {
  private readonly isKnown: (value: string) => boolean;
  private readonly admitted = new Set<string>();
  private readonly max: number;
  /** Values folded into `other` so far (distinct values are not remembered: that would be unbounded). */
  folded = 0;

  constructor(policy: LabelPolicy = {}, defaultMax = 500) {
    const known = policy.known;
    if (typeof known === 'function') this.isKnown = known;
    else {
      const set = new Set(known ?? []);
      this.isKnown = (value) => set.has(value);
    }
    this.max = policy.max ?? defaultMax;
  }

  /** The label value to use for `value`. */
  fold(value: string): string {
    if (value === '' || this.admitted.has(value) || this.isKnown(value)) return value;
    if (this.admitted.size < this.max) {
      this.admitted.add(value);
      return value;
    }
    this.folded++;
    return OTHER_LABEL;
  }
}
