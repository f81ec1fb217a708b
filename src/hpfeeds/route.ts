// One channel's subscribers and the frames published on it during the current I/O turn. At the
// end of the turn the frames are copied once into one buffer (the "tick buffer") that every
// subscriber of the channel is handed, whole or as a slice: fan-out costs one copy per channel
// per turn, not one per subscriber per frame, and N slow subscribers hold one buffer, not N.

/** A sealed turn's frames of one channel; freed (for accounting) when the last write using it is done. */
export class TickBuffer {
  /** Writes handed to sockets that still reference `buf`. */
  refs = 0;
  /** True while the broker is still handing the buffer out (it cannot be released yet). */
  open = true;
  constructor(readonly buf: Buffer) {}
}

export class ChannelRoute<Subscriber> {
  /** Replaced, never mutated, on (un)subscribe so routing can iterate freely. */
  subscribers: readonly Subscriber[] = [];
  /** Frames routed in this turn (views into read chunks or in-process frames; copied at seal). */
  private readonly frames: Buffer[] = [];
  /** Bytes routed in this turn: the offset the next frame will have in the tick buffer. */
  bytes = 0;
  /** Set by seal(), cleared by reset(). */
  tick: TickBuffer | undefined;

  constructor(readonly channel: string) {}

  get active(): boolean {
    return this.frames.length > 0;
  }

  push(frame: Buffer): void {
    this.frames.push(frame);
    this.bytes += frame.length;
  }

  seal(): TickBuffer {
    const frames = this.frames;
    // allocUnsafeSlow: never a slice of the shared 8 KiB pool, which a queued frame would pin.
    const buf = Buffer.allocUnsafeSlow(this.bytes);
    let offset = 0;
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      buf.set(f, offset);
      offset += f.length;
    }
    frames.length = 0;
    this.tick = new TickBuffer(buf);
    return this.tick;
  }

  reset(): void {
    this.tick = undefined;
    this.bytes = 0;
  }
}
