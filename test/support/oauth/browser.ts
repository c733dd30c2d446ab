import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium } from 'playwright-core';
import { type Account, TEST_ACCOUNT } from './authorization-server.js';

/** Debian's chromium (installed by .ci/run). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A loopback page standing in for our callback: records each query it is sent. */
export interface CallbackCatcher {
  url: string;
  received: URLSearchParams[];
  stop(): Promise<void>;
}

/** Starts a {@link CallbackCatcher}. */
export async function startCallbackCatcher(): Promise<CallbackCatcher> {
  const received: URLSearchParams[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    // Chromium also asks for /favicon.ico: only the callback path counts.
    if (url.pathname !== '/v1/oauth/callback') {
      res.writeHead(404).end();
      return;
    }
    received.push(url.searchParams);
    res.writeHead(200, { 'content-type': 'text/html' }).end('<p>done</p>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/oauth/callback`,
    received,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Launches headless chromium (`--no-sandbox`: CI runs as root), with any further `args`. */
export function launchBrowser(args: readonly string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', ...args] });
}

/**
 * Opens the authorization URL as a user would, signs in as the test account, consents, and
 * returns the query the authorization server redirected to the callback with.
 */
export async function consentInBrowser(
  browser: Browser,
  authorizationUrl: string,
  catcher: CallbackCatcher,
): Promise<URLSearchParams> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const before = catcher.received.length;
    await page.goto(authorizationUrl);
    await page.fill('#login', TEST_ACCOUNT.login);
    await page.fill('#password', TEST_ACCOUNT.password);
    await Promise.all([page.waitForLoadState('load'), page.click('#submit')]);
    if (catcher.received.length === before) {
      await page.waitForSelector('h1:has-text("Allow")');
      await Promise.all([page.waitForURL(`${catcher.url}**`), page.click('#submit')]);
    }
    const params = catcher.received.at(-1);
    if (params === undefined || catcher.received.length === before)
      throw new Error('the browser never reached the callback');
    return params;
  } finally {
    await context.close();
  }
}

/** Where a browser flow ended: the URL it was sent to (query included) and the page's text. */
export interface LandedPage {
  url: string;
  text: string;
}

/**
 * Opens the authorization URL as a user would, signs in as `account`, allows when asked, and
 * waits for the page whose URL starts with `landing` (an app's return page, say); returns it.
 */
export async function signInAndAllow(
  browser: Browser,
  authorizationUrl: string,
  options: { account?: Account; landing: string },
): Promise<LandedPage> {
  const account = options.account ?? TEST_ACCOUNT;
  const isLanding = (url: URL) => url.href.startsWith(options.landing);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    // A flow that stops on an error page fails in seconds, saying where, rather than at the test's timeout.
    page.setDefaultTimeout(10_000);
    // The URL as requested: the page may replace it (history.replaceState) once loaded.
    const requested: string[] = [];
    page.on('request', (request) => {
      if (request.isNavigationRequest() && request.url().startsWith(options.landing))
        requested.push(request.url());
    });
    try {
      await page.goto(authorizationUrl);
      await page.fill('#login', account.login);
      await page.fill('#password', account.password);
      await page.click('#submit');
      const consent = page.locator('h1', { hasText: 'Allow' });
      const asked = consent.waitFor().then(() => true);
      const landed = page.waitForURL(isLanding, { waitUntil: 'load' }).then(() => false);
      // The loser is left pending until the context closes: never an unhandled rejection.
      asked.catch(() => {});
      landed.catch(() => {});
      if (await Promise.race([asked, landed])) {
        await Promise.all([page.waitForURL(isLanding, { waitUntil: 'load' }), page.click('#submit')]);
      }
    } catch (error) {
      const text = (await page.textContent('body').catch(() => null)) ?? '';
      throw new Error(`the browser flow stopped at ${page.url()}: ${text.slice(0, 300)}`, { cause: error });
    }
    const url = requested.at(-1);
    if (url === undefined) throw new Error(`the browser never reached ${options.landing}`);
    return { url, text: (await page.textContent('body')) ?? '' };
  } finally {
    await context.close();
  }
}
