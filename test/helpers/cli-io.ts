import { PassThrough } from 'node:stream';

/** stdout/stderr streams for a CLI function under test, with what was written to each. */
export function captureIo() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  return { io: { stdout, stderr }, out: () => out, err: () => err };
}
