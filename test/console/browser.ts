// Debian's Chromium driven by playwright-core: never a downloaded browser. Tests skip (saying
// why) only when /usr/bin/chromium is absent; CI installs it (.ci/run).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const chromiumMissing = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (Debian: apt-get install chromium); the console e2e test needs it`;

/** Screenshots of every page land here (gitignored); a chosen set is copied to docs/screenshots/. */
export const screenshotDir = fileURLToPath(new URL('../../test-results/console/', import.meta.url));

export async function launchChromium(): Promise<Browser> {
  mkdirSync(screenshotDir, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    timeout: 60_000,
  });
}

export function shot(name: string): string {
  return join(screenshotDir, `${name}.png`);
}
