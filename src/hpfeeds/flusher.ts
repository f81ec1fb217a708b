// When subscribers' queued frames are written: once the I/O turn that queued them is done, all
// connections together, each channel's frames copied once into a shared tick buffer first (see
// route.ts). In a steady trickle the flush also lingers, so small fan-out costs one socket write
// per subscriber per window instead of one per message.
import type { ChannelRoute, TickBuffer } from './route.js';

/** A flush carrying this much (all channels) is not followed by a lingering one. */
export const LINGER_MAX_BYTES = 16 * 1024;

/** What the flusher needs from a connection with queued frames. */
export interface Flushable {
  flush(): void;
}

export class TurnFlusher<Conn extends Flushable> {
  /** Routes with frames since the last flush, and connections with something to write. */
  private activeRoutes: ChannelRoute<Conn>[] = [];
  private dirty: Conn[] = [];
  private spareDirty: Conn[] = [];
  private scheduled = false;
  /** Set while a flush waits for the linger window (frames of each turn must then be captured). */
  private lingerTimer: NodeJS.Timeout | undefined;
  private captureScheduled = false;
  /** When the last flush ran (performance.now()), for the linger window. */
  private lastFlushAt = -Infinity;
  /** Bytes of the channels' turns in the last flush: only small flushes linger. */
  private lastFlushBytes = 0;

  /**
   * @param lingerMs  see BrokerOptions.flushLingerMs
   * @param release   returns a tick buffer to the broker (budget, pieces) when nobody took it
   * @param sealed    every route's frames have just been copied into tick buffers: whatever they
   *                  pointed into (the broker's publish arena) may be written again
   */
  constructor(
    readonly lingerMs: number,
    private readonly release: (tick: TickBuffer) => void,
    private readonly sealed: () => void = () => {},
  ) {}

  /** The route got its first frame since the last flush. */
  routeActivated(route: ChannelRoute<Conn>): void {
    this.activeRoutes.push(route);
  }

  /**
   * A frame was added to a route. `external`: it points into a peer's read buffer, valid only
   * until the end of this turn, so a lingering flush needs it captured before then.
   */
  framePushed(external: boolean): void {
    if (external && this.lingerTimer !== undefined && !this.captureScheduled) this.scheduleCapture();
  }

  /**
   * `conn` has its first frame since its last write. Connections with queued frames are flushed
   * together once the current I/O turn is done, but not sooner than `lingerMs` after the previous
   * flush: in a steady trickle (one message per turn) each subscriber then gets one write per
   * window instead of one per message, which is most of the cost of small fan-out. A message after a quiet spell goes out at once, and so
   * does everything after a flush of LINGER_MAX_BYTES or more: at high rates each turn already
   * carries enough to fill a write, and holding it would only run subscribers into their
   * high-water mark.
   */
  schedule(conn: Conn): void {
    this.dirty.push(conn);
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.lastFlushBytes < LINGER_MAX_BYTES ? this.lingerMs - (performance.now() - this.lastFlushAt) : 0;
    if (wait >= 1) {
      this.lingerTimer = setTimeout(this.flush, wait);
      // This turn's frames were pushed before the window opened.
      this.scheduleCapture();
    } else {
      setImmediate(this.flush);
    }
  }

  /** Writes a lingering flush now (the broker is closing: connections must not wait out the window). */
  flushLingering(): void {
    if (this.lingerTimer !== undefined) this.flush();
  }

  /** Frames of this turn may point into read buffers: they are copied before the turn ends. */
  private scheduleCapture(): void {
    this.captureScheduled = true;
    setImmediate(this.captureTurn);
  }

  private readonly captureTurn = (): void => {
    this.captureScheduled = false;
    const routes = this.activeRoutes;
    for (let i = 0; i < routes.length; i++) routes[i].capture();
  };

  private readonly flush = (): void => {
    this.scheduled = false;
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    this.lastFlushAt = performance.now();
    const routes = this.activeRoutes;
    this.activeRoutes = [];
    const ticks: TickBuffer[] = [];
    let bytes = 0;
    for (let i = 0; i < routes.length; i++) {
      const tick = routes[i].seal();
      ticks.push(tick);
      bytes += tick.size;
    }
    // Before any socket write: a publish that a write's callback might make goes to the next turn's routes.
    this.sealed();
    this.lastFlushBytes = bytes;
    const dirty = this.dirty;
    this.dirty = this.spareDirty;
    for (let i = 0; i < dirty.length; i++) dirty[i].flush();
    dirty.length = 0;
    this.spareDirty = dirty;
    for (let i = 0; i < routes.length; i++) {
      routes[i].reset();
      const tick = ticks[i];
      tick.open = false;
      // Nobody took it (all its subscribers closed in this turn): its bytes are free now.
      if (tick.refs === 0) this.release(tick);
    }
  };
}
