import { type Browser, chromium } from 'playwright-core';

/** The Chromium the browser tests drive (Debian's package; LAGOON_CHROMIUM to use another). */
export const CHROMIUM = process.env.LAGOON_CHROMIUM ?? '/usr/bin/chromium';

/** Headless Chromium with the flags this machine needs (no sandbox, no GPU, no background traffic). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
    ],
  });
}
