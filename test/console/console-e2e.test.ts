// The operator console end to end, in a real browser against the real composed core with a
// simulated node: log in, approve the pending node, install a pot and see its command succeed,
// watch an attack arrive live in the events tail and on the map, open the attacker and the session
// transcript, create an hpfeeds authkey, log out; a viewer sees no write controls and the API
// refuses them anyway. Every page is screenshotted (test-results/console/).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildConsole } from '../../scripts/build-console.js';
import { HpfeedsClient } from '../../src/hpfeeds/index.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { startTestCore, until, type TestCore } from '../helpers/core.js';
import { chromiumMissing, launchChromium, shot } from './browser.js';

const ADMIN = { username: 'alice', password: 'correct-horse-battery-1' };
const VIEWER = { username: 'victor', password: 'viewer-password-1234' };
// An address the shipped DB-IP data places in GB (a MaxMind test address, not a real attacker).
const ATTACKER = '81.2.69.142';
const SESSION = 'c0ffee00e2e1';
// Waits are on conditions; these bounds are for 2 busy cores.
const WAIT = 30_000;

describe('operator console in Chromium', { skip: chromiumMissing, timeout: 180_000 }, () => {
  let t: TestCore;
  let node: SimulatedNode;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let subscriber: HpfeedsClient | undefined;
  const problems: string[] = [];
  /** 400 answers the journey provokes on purpose and expects Chromium to log. */
  let expected400 = 0;

  before(async () => {
    const built = await buildConsole({ ifStale: true, quiet: true });
    assert.ok(built, 'the console must build (web/ and vite are in the repository)');
    t = await startTestCore({ env: { ANALYTICS_FLUSH_MS: '200', GIT_URL_ALLOW: 'https://git.example.org/pots/' } });
    await t.core.users.create(ADMIN.username, 'admin', ADMIN.password);
    await t.core.users.create(VIEWER.username, 'viewer', VIEWER.password);
    node = new SimulatedNode({ name: 'sim-1', port: t.core.addresses.nodeTcp.port, host: '127.0.0.1', reconnectDelayMs: 300, heartbeatMs: 1000 });
    node.start();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    // Any CSP violation or uncaught error fails the run at the end.
    page.on('console', (m) => {
      if (m.type() !== 'error' || /status of 401/.test(m.text())) return;
      // A refusal the journey provokes on purpose (the git_url check) is logged by Chromium too.
      if (expected400 > 0 && /status of 400/.test(m.text())) {
        expected400--;
        return;
      }
      problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  });

  after(async () => {
    if (problems.length) process.stderr.write(`browser problems:\n${problems.join('\n')}\n`);
    await browser?.close();
    await subscriber?.close(1000).catch(() => {});
    await node?.stop();
    await t?.close();
  });

  const attackEvent = (eventid: string, extra: Record<string, unknown>) => ({
    type: 'PotEvent' as const,
    node_id: node.nodeId,
    pot_id: 'cowrie-01',
    pot_type: 'cowrie',
    event_type: eventid,
    timestamp: new Date().toISOString(),
    data: { eventid, session: SESSION, src_ip: ATTACKER, src_port: 51515, dst_ip: '10.0.0.5', dst_port: 22, sensor: 'sim-1', protocol: 'ssh', timestamp: new Date().toISOString(), ...extra },
  });

  it('logs in, approves the pending node, installs a pot, sees an attack live, the attacker and the session, creates an authkey, logs out', async () => {
    try {
      await adminJourney();
    } catch (err) {
      await page.screenshot({ path: shot('failure'), fullPage: true }).catch(() => {});
      throw err;
    }
  });

  async function adminJourney() {
    await page.goto(t.base);
    await page.getByLabel('User name').fill(ADMIN.username);
    await page.getByLabel('Password').fill('wrong-password-000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong user name or password' }).waitFor();
    await page.screenshot({ path: shot('login') });
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    // Keyboard: the first Tab reaches the skip link, which moves focus to the page content.
    await page.locator('body').focus();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.textContent'), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'main');

    // The node knocked while we logged in: it waits, pending, until approved here.
    await until(async () => (await t.api('GET', '/api/v1/nodes/sim-1', { token: t.adminToken })).status === 200, 'sim-1 pending', WAIT);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Nodes' }).click();
    const row = page.locator('tr[data-node="sim-1"]');
    await row.getByTestId('node-status').getByText('pending').waitFor();
    await page.screenshot({ path: shot('nodes-pending') });
    await row.getByRole('button', { name: 'Approve' }).click();
    await row.getByTestId('node-status').getByText('online').waitFor();
    await page.screenshot({ path: shot('nodes') });
    // Pre-create a node: its secret and a ready-to-paste setup are shown once.
    await page.getByLabel('New node name').fill('edge-2');
    await page.getByRole('button', { name: 'Create node' }).click();
    const created = page.getByRole('dialog', { name: 'Node edge-2 created' });
    await created.waitFor();
    const nodeSecret = ((await created.getByTestId('secret').textContent()) ?? '').trim();
    assert.match(nodeSecret, /^[A-Z2-7]{16,}$/, 'a base32 TOTP secret');
    const setup = (await created.getByTestId('node-config').textContent()) ?? '';
    assert.ok(setup.includes(nodeSecret) && setup.includes('--name edge-2'), setup);
    await page.screenshot({ path: shot('nodes-created') });
    await created.getByRole('button', { name: 'Close' }).click();
    await page.locator('tr[data-node="edge-2"]').waitFor();
    // A command to a selection of nodes (broadcast).
    await page.getByLabel('Select sim-1').check();
    await page.getByLabel('Command', { exact: true }).selectOption('GetInstalledPots');
    await page.getByRole('button', { name: 'Send GetInstalledPots' }).click();
    await page.getByRole('status').filter({ hasText: 'Queued for 1 node' }).waitFor();
    await page.getByLabel('Select sim-1').uncheck();

    // Node detail: install a pot with the composer and watch the command go to succeeded.
    await row.getByRole('link', { name: 'sim-1' }).click();
    await page.getByRole('heading', { name: /sim-1/, level: 1 }).waitFor();
    await page.getByLabel('Command', { exact: true }).selectOption('InstallPot');
    await page.getByLabel(/^pot_id/).fill('cowrie-01');
    await page.getByLabel(/^honeypot_type/).fill('cowrie');
    await page.getByLabel('auto_start').check();
    // A git_url off the core's allow-list is refused before anything is sent.
    await page.getByLabel(/^git_url/).fill('https://evil.example.com/pots/cowrie.git');
    expected400 = 1;
    await page.getByRole('button', { name: 'Send InstallPot' }).click();
    await page.getByRole('alert').filter({ hasText: 'does not match the configured git URL allow-list' }).waitFor();
    const queued = (await t.api('GET', '/api/v1/commands?node=sim-1&limit=100', { token: t.adminToken })).body as { commands: Array<{ kind: string }> };
    assert.equal(queued.commands.filter((c) => c.kind === 'InstallPot').length, 0, 'the refused InstallPot was not queued');
    await page.getByLabel(/^git_url/).fill('');
    await page.getByRole('button', { name: 'Send InstallPot' }).click();
    await page.locator('tr[data-command="InstallPot"][data-status="succeeded"]').waitFor();
    await page.locator('tr[data-pot="cowrie-01"]').waitFor();
    await page.getByRole('button', { name: 'Restart cowrie-01' }).click();
    await page.locator('tr[data-command="RestartPot"][data-status="succeeded"]').waitFor();
    await page.screenshot({ path: shot('node-detail'), fullPage: true });

    // Events: the live tail is connected before the attack is sent, so it must arrive live.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Events' }).click();
    await page.getByTestId('stream-state').getByText('connected').waitFor();
    node.send(attackEvent('cowrie.session.connect', { message: `New connection: ${ATTACKER}:51515` }));
    node.send(attackEvent('cowrie.login.success', { username: 'root', password: 'hunter2' }));
    node.send(attackEvent('cowrie.command.input', { input: 'uname -a' }));
    node.send(attackEvent('cowrie.command.input', { input: 'cat /etc/passwd' }));
    node.send(attackEvent('cowrie.session.closed', { duration: 3 }));
    const liveRow = page.locator(`[role="row"][data-src="${ATTACKER}"][data-event-type="cowrie.command.input"]`).first();
    await liveRow.waitFor();
    await liveRow.click();
    await page.getByTestId('event-json').getByText(ATTACKER).first().waitFor();
    await page.screenshot({ path: shot('events') });
    // The same events found by a search over the past (keyset paged).
    await page.getByRole('tab', { name: 'Search' }).click();
    await page.locator(`[role="row"][data-src="${ATTACKER}"][data-event-type="cowrie.login.success"]`).waitFor();
    await page.screenshot({ path: shot('events-search') });

    // Overview: the attack shows on the map (GB) and in the top attackers.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
    // The page refreshes every 5 s; on a loaded CI machine the analytics write can take a while.
    // If the map never shows GB, say what the API answered, so a failure can be told apart from a slow run.
    await page
      .locator('path.country[data-country="GB"]')
      .waitFor({ state: 'attached', timeout: 60_000 })
      .catch(async (err: Error) => {
        const since = new Date(Date.now() - 86_400_000).toISOString();
        const top = await t.api('GET', `/api/v1/attacks/top?by=country&since=${since}&limit=5`, { token: t.adminToken });
        const attacker = await t.api('GET', `/api/v1/attackers/${ATTACKER}`, { token: t.adminToken });
        throw new Error(`${err.message}\ntop countries: ${top.status} ${JSON.stringify(top.body)}\nattacker: ${attacker.status} ${JSON.stringify(attacker.body).slice(0, 400)}\nmap label: ${await page.locator('[aria-label^="Attacks by country"]').first().getAttribute('aria-label').catch(() => 'none')}`);
      });
    await page.getByRole('link', { name: ATTACKER }).waitFor();
    await page.screenshot({ path: shot('overview'), fullPage: true });
    // Replay: a window 30 days back (slider moved with the keyboard) has no attacks; Live has them.
    await page.getByRole('slider').focus();
    await page.keyboard.press('Home');
    await page.getByTestId('map-countries').getByText('No attacks with a known country').waitFor();
    assert.notEqual(await page.getByTestId('window-end').textContent(), 'now (live)');
    await page.getByRole('button', { name: 'Live', exact: true }).click();
    await page.locator('path.country[data-country="GB"]').waitFor({ state: 'attached' });

    // Attacker profile, then the session as a transcript.
    await page.getByRole('link', { name: ATTACKER }).click();
    await page.getByRole('heading', { name: `Attacker ${ATTACKER}` }).waitFor();
    assert.equal(await page.getByTestId('attacker-country').textContent(), 'GB');
    await page.screenshot({ path: shot('attacker'), fullPage: true });
    await page.getByRole('link', { name: 'Transcript' }).first().click();
    const transcript = page.getByTestId('transcript');
    await transcript.getByText('uname -a').waitFor();
    const text = (await transcript.textContent()) ?? '';
    assert.ok(text.indexOf('uname -a') < text.indexOf('cat /etc/passwd'), 'commands in the order typed');
    await page.screenshot({ path: shot('session') });

    // hpfeeds: a new authkey, its secret shown once.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'hpfeeds' }).click();
    await page.getByLabel('Ident').fill('analyst-1');
    await page.getByLabel('Subscribe channels').fill('apiary.events');
    await page.getByRole('button', { name: 'Create authkey' }).click();
    const shown = page.getByRole('dialog', { name: 'Secret of analyst-1' });
    await shown.waitFor();
    const secret = (await shown.getByTestId('secret').textContent())?.trim() ?? '';
    assert.ok(secret.length >= 16, `secret shown: ${secret}`);
    await page.screenshot({ path: shot('hpfeeds-secret') });
    await shown.getByRole('button', { name: 'Close' }).click();
    await page.locator('tr[data-ident="analyst-1"]').waitFor();
    // The dialog's close event reaches React a turn after the click: wait for the text to go, then
    // check nothing else on the page still shows it.
    await page.getByText(secret).first().waitFor({ state: 'detached', timeout: 5000 });
    assert.equal(await page.getByText(secret).count(), 0, 'the secret is gone once the dialog is closed');
    const key = await t.api('GET', '/api/v1/hpfeeds/authkeys/analyst-1', { token: t.adminToken });
    assert.deepEqual(key.body.subchans, ['apiary.events']);
    // A subscriber with the new key shows up live on the page (connections and channel subscribers).
    subscriber = new HpfeedsClient({ host: '127.0.0.1', port: t.core.addresses.hpfeeds[0]!.port, ident: 'analyst-1', secret, reconnect: false });
    subscriber.on('error', () => {});
    await subscriber.connect();
    subscriber.subscribe('apiary.events');
    await page.getByTestId('broker-connections').getByText('1', { exact: true }).waitFor();
    await page.locator('tr', { has: page.getByText('apiary.events', { exact: true }) }).getByRole('cell').first().getByText('1', { exact: true }).waitFor();
    await page.screenshot({ path: shot('hpfeeds') });

    // The remaining pages render (and are screenshotted).
    for (const [path, heading, name] of [
      ['/sessions', 'Sessions', 'sessions'],
      ['/tokens', 'API tokens', 'tokens'],
      ['/users', 'Users', 'users'],
      ['/audit', 'Audit log', 'audit'],
    ] as const) {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: heading === 'API tokens' ? 'Tokens' : heading === 'Audit log' ? 'Audit log' : heading }).click();
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
      await page.locator('table').first().waitFor();
      await page.screenshot({ path: shot(name) });
      assert.equal(new URL(page.url()).pathname, path);
    }
    await page.getByRole('link', { name: /Your account/ }).click();
    await page.getByRole('heading', { name: 'Change password' }).waitFor();
    await page.screenshot({ path: shot('account') });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
    // The audit log shows the approval made in the browser, by the user.
    await page.getByText('nodes.approve').first().waitFor();

    // Dark theme and phone width.
    await page.getByRole('button', { name: /Switch to dark theme/ }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
    await page.locator('path.country[data-country="GB"]').waitFor({ state: 'attached' });
    await page.screenshot({ path: shot('overview-dark'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('button', { name: 'Menu' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Nodes' }).click();
    await page.locator('tr[data-node="sim-1"]').getByTestId('node-status').getByText('online').waitFor();
    await page.screenshot({ path: shot('nodes-phone') });
    await page.getByRole('button', { name: 'Menu' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts' }).click();
    await page.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor();
    await page.getByRole('heading', { name: 'New rule' }).waitFor();
    await page.screenshot({ path: shot('alerts-phone'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 860 });

    // Log out: back to the login form, and the old cookie no longer opens the API.
    const cookie = (await context.cookies()).find((c) => c.name === 'apiary_session');
    assert.ok(cookie?.httpOnly, 'the session cookie is httpOnly');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    const after = await t.api('GET', '/api/v1/nodes', { headers: { cookie: `apiary_session=${cookie!.value}` } });
    assert.equal(after.status, 401);
    assert.deepEqual(problems, []);
  }

  it('shows a viewer no write controls, and the API refuses them anyway', async () => {
    const viewer = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const p = await viewer.newPage();
    p.setDefaultTimeout(WAIT);
    try {
      await p.goto(t.base);
      await p.getByLabel('User name').fill(VIEWER.username);
      await p.getByLabel('Password').fill(VIEWER.password);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
      const nav = p.getByRole('navigation', { name: 'Main' });
      assert.equal(await nav.getByRole('link', { name: 'hpfeeds' }).count(), 0);
      assert.equal(await nav.getByRole('link', { name: 'Users' }).count(), 0);
      await nav.getByRole('link', { name: 'Nodes' }).click();
      await p.locator('tr[data-node="sim-1"]').waitFor();
      for (const name of ['Create node', 'Approve', 'Revoke', 'Rotate secret', 'Delete']) {
        assert.equal(await p.getByRole('button', { name, exact: true }).count(), 0, `no ${name} button`);
      }
      await p.screenshot({ path: shot('nodes-viewer') });
      await p.getByRole('link', { name: 'sim-1' }).click();
      await p.getByRole('heading', { name: 'Command history' }).waitFor();
      assert.equal(await p.getByRole('heading', { name: 'Send a command' }).count(), 0);
      await p.locator('tr[data-pot="cowrie-01"]').waitFor();
      assert.equal(await p.getByRole('button', { name: 'Stop cowrie-01' }).count(), 0);
      // The same requests made by hand from the viewer's page, with the session's CSRF token.
      const statuses = await p.evaluate(async () => {
        const s = (await (await fetch('/api/v1/session')).json()) as { csrf_token: string };
        const h = { 'content-type': 'application/json', 'x-csrf-token': s.csrf_token };
        const revoke = await fetch('/api/v1/nodes/sim-1/revoke', { method: 'POST', headers: h });
        const command = await fetch('/api/v1/nodes/sim-1/commands', { method: 'POST', headers: h, body: JSON.stringify({ command: { GetInstalledPots: {} } }) });
        const authkey = await fetch('/api/v1/hpfeeds/authkeys', { method: 'POST', headers: h, body: JSON.stringify({ ident: 'sneaky' }) });
        return [revoke.status, command.status, authkey.status];
      });
      assert.deepEqual(statuses, [403, 403, 403]);
      const n = await t.api('GET', '/api/v1/nodes/sim-1', { token: t.adminToken });
      assert.equal(n.body.enrollment === 'revoked', false);
    } finally {
      await viewer.close();
    }
  });
});
