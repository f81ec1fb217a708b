// At most a few password hashes at once. scrypt runs on libuv's small thread pool (4 threads by
// default), which file and DNS work share: a flood of logins from many addresses (each under its
// own rate limit) must not starve them. Past the queue bound, logins are refused at once.

export class KdfBusyError extends Error {
  constructor() {
    super('too many logins are being checked at once; try again in a second');
    this.name = 'KdfBusyError';
  }
}

export class KdfGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly maxConcurrent = 2,
    private readonly maxWaiting = 64,
  ) {}

  /** Runs `work` when a slot is free; throws KdfBusyError when too many already wait. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.maxConcurrent) {
      if (this.waiting.length >= this.maxWaiting) throw new KdfBusyError();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.running++;
    try {
      return await work();
    } finally {
      // The slot passes straight to the next waiter (running stays the same), or is freed.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
