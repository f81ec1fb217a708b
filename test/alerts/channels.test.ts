// Alert channels against real receivers on 127.0.0.1: the HMAC-signed webhook, the Slack payload,
// Telegram's sendMessage, SMTP with STARTTLS (certificate made in the test); bounded retries of a
// receiver that is down, with the failure counted and logged and no secret in the log.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { AlertService, SqliteAlertStore } from '../../src/alerts/index.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { tempDir } from '../helpers/tmp.js';
import { startHttpReceiver, startSmtpReceiver, until, type HttpReceiver, type SmtpReceiver } from './receivers.js';

const HMAC_SECRET = 'webhook-hmac-secret-0123456789';
const BOT_TOKEN = '123456:TEST-bot-token_abcdef';
const SMTP_PASSWORD = 'smtp-password-xyz';

function capture() {
  const lines: any[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream) as any, lines, text: () => JSON.stringify(lines) };
}

/** What a receiver does with the webhook headers: recompute the HMAC, refuse old timestamps. */
function verifyWebhook(headers: Record<string, unknown>, body: string, secret: string, nowMs = Date.now()): boolean {
  const ts = String(headers['x-apiary-timestamp'] ?? '');
  const sig = String(headers['x-apiary-signature'] ?? '');
  if (!/^\d+$/.test(ts) || Math.abs(nowMs / 1000 - Number(ts)) > 300) return false;
  return sig === `sha256=${createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex')}`;
}

describe('alert channels against real receivers', () => {
  const dir = tempDir('apiary-alerts-');
  let db: DatabaseHandle;
  let registry: Registry;
  let log: ReturnType<typeof capture>;
  let alerts: AlertService;
  let http: HttpReceiver;
  let smtp: SmtpReceiver;

  before(async () => {
    db = openDatabase(join(dir.path, 'a.sqlite'));
    registry = new Registry();
    log = capture();
    alerts = new AlertService({ store: new SqliteAlertStore(db), logger: log.logger, registry, sendTimeoutMs: 3000, maxAttempts: 3, retryDelayMs: 30 });
    await alerts.load();
    http = await startHttpReceiver('{"ok":true,"result":{"message_id":1}}');
    smtp = await startSmtpReceiver({ user: 'alerts', password: SMTP_PASSWORD });
  });
  after(async () => {
    alerts?.close();
    await http?.close();
    await smtp?.close();
    db?.close();
    dir.cleanup();
  });

  const offlineRule = (name: string, channel: string, nodes: string[]) =>
    alerts.createRule({ name, kind: 'node_offline', params: { nodes }, channels: [channel], dedupSeconds: 0 });

  it('webhook: the alert as JSON, HMAC-signed over timestamp and body', async () => {
    const ch = await alerts.createChannel({ name: 'hook', type: 'webhook', config: { url: `${http.url}/hook` }, secrets: { hmacSecret: HMAC_SECRET } });
    await offlineRule('hook-rule', ch.id, ['n-hook']);
    const before = http.hits.length;
    alerts.nodeOffline({ nodeName: 'n-hook', reason: 'stale' });
    const hit = (await http.waitFor(before + 1))[before]!;
    assert.equal(hit.method, 'POST');
    assert.equal(hit.path, '/hook');
    assert.equal(hit.headers['content-type'], 'application/json');
    assert.ok(verifyWebhook(hit.headers, hit.body, HMAC_SECRET), 'signature verifies');
    assert.ok(!verifyWebhook(hit.headers, hit.body.replace('n-hook', 'n-h0ok'), HMAC_SECRET), 'a changed body does not verify');
    assert.ok(!verifyWebhook(hit.headers, hit.body, 'another-secret-0123456789'), 'another secret does not verify');
    assert.ok(!verifyWebhook(hit.headers, hit.body, HMAC_SECRET, Date.now() + 3600_000), 'an old delivery (replay) is refused');
    assert.equal(hit.json.rule.kind, 'node_offline');
    assert.equal(hit.json.subject, 'n-hook');
    assert.equal(hit.json.details.reason, 'stale');
    assert.equal(hit.headers['x-apiary-delivery'], hit.json.id);
  });

  it('slack: text plus one mrkdwn section block, posted to the secret webhook URL', async () => {
    const ch = await alerts.createChannel({ name: 'slack', type: 'slack', secrets: { url: `${http.url}/services/T000/B000/slacksecretpath` } });
    await offlineRule('slack-rule', ch.id, ['n-slack']);
    const before = http.hits.length;
    alerts.nodeOffline({ nodeName: 'n-slack', reason: 'closed <now>' });
    const hit = (await http.waitFor(before + 1))[before]!;
    assert.equal(hit.path, '/services/T000/B000/slacksecretpath');
    assert.deepEqual(Object.keys(hit.json).sort(), ['blocks', 'text']);
    assert.equal(hit.json.text, 'Node n-slack is offline');
    assert.equal(hit.json.blocks.length, 1);
    assert.equal(hit.json.blocks[0].type, 'section');
    assert.equal(hit.json.blocks[0].text.type, 'mrkdwn');
    assert.match(hit.json.blocks[0].text.text, /reason: closed &lt;now&gt;/);
    // the API shows the URL masked
    const view = alerts.channelView(alerts.getChannel(ch.id));
    assert.equal(view.secrets.url, '****path');
  });

  it('telegram: sendMessage on the configured base URL with the bot token in the path', async () => {
    const ch = await alerts.createChannel({ name: 'tg', type: 'telegram', config: { chatId: -1001234, apiBase: `${http.url}/tg/` }, secrets: { botToken: BOT_TOKEN } });
    await offlineRule('tg-rule', ch.id, ['n-tg']);
    const before = http.hits.length;
    alerts.nodeOffline({ nodeName: 'n-tg', reason: 'stale' });
    const hit = (await http.waitFor(before + 1))[before]!;
    assert.equal(hit.path, `/tg/bot${BOT_TOKEN}/sendMessage`);
    assert.equal(hit.json.chat_id, -1001234);
    assert.match(hit.json.text, /^Node n-tg is offline\nreason: stale\nrule: tg-rule/);
    await until(() => alerts.channelView(alerts.getChannel(ch.id)).stats.delivered === 1, 'telegram delivery counted');
    // An answer without ok:true is a failure, even with HTTP 200.
    http.answer = '{"ok":false,"description":"chat not found"}';
    const res = await alerts.testChannel(ch.id);
    http.answer = '{"ok":true,"result":{"message_id":2}}';
    assert.equal(res.delivered, false);
    assert.match(res.error!, /ok:true/);
  });

  it('email: SMTP with STARTTLS (verified certificate) and AUTH only after it', async () => {
    const config = { host: '127.0.0.1', port: smtp.port, from: 'apiary@example.test', to: ['soc@example.test', 'oncall@example.test'], username: 'alerts', ca: smtp.cert.ca, servername: 'localhost' };
    const ch = await alerts.createChannel({ name: 'mail', type: 'email', config, secrets: { password: SMTP_PASSWORD } });
    await offlineRule('mail-rule', ch.id, ['n-mail']);
    alerts.nodeOffline({ nodeName: 'n-mail', reason: 'stale' });
    await until(() => smtp.mails.length === 1, 'the mail', 15_000);
    const mail = smtp.mails[0]!;
    assert.equal(mail.secure, true, 'delivered over TLS after STARTTLS');
    assert.equal(mail.user, 'alerts');
    assert.equal(mail.from, 'apiary@example.test');
    assert.deepEqual(mail.to, ['soc@example.test', 'oncall@example.test']);
    assert.match(mail.data, /Subject: \[apiary\] Node n-mail is offline/);
    assert.match(mail.data, /reason: stale/);
    assert.equal(smtp.plainAuthAttempts, 0);

    // Without the test CA the certificate does not verify: nothing is sent.
    const untrusted = await alerts.createChannel({ name: 'mail-untrusted', type: 'email', config: { ...config, ca: undefined }, secrets: { password: SMTP_PASSWORD } });
    const res = await alerts.testChannel(untrusted.id);
    assert.equal(res.delivered, false);
    assert.equal(smtp.mails.length, 1);
    // The sample reaches the trusted channel.
    assert.deepEqual(await alerts.testChannel(ch.id), { delivered: true });
    await until(() => smtp.mails.length === 2, 'the sample mail');
    assert.match(smtp.mails[1]!.data, /\[test\]/);
  });

  it('a receiver that fails for a while gets retries until it answers', async () => {
    const ch = await alerts.createChannel({ name: 'flaky', type: 'webhook', config: { url: `${http.url}/flaky` }, secrets: { hmacSecret: HMAC_SECRET } });
    await offlineRule('flaky-rule', ch.id, ['n-flaky']);
    http.failNext(2);
    alerts.nodeOffline({ nodeName: 'n-flaky', reason: 'stale' });
    await until(() => alerts.channelView(alerts.getChannel(ch.id)).stats.delivered === 1, 'delivered on the third attempt');
    const stats = alerts.channelView(alerts.getChannel(ch.id)).stats;
    assert.equal(stats.retries, 2);
    assert.equal(stats.failed, 0);
    const flakyHits = http.hits.filter((h) => h.path === '/flaky');
    assert.equal(flakyHits.length, 3);
    assert.equal(new Set(flakyHits.map((h) => h.json.id)).size, 1, 'the same alert each time');
  });

  it('a channel that is down: bounded retries, then the failure is counted and logged (without secrets)', async () => {
    const dead = await startHttpReceiver();
    const deadUrl = `${dead.url}/gone`;
    await dead.close();
    const ch = await alerts.createChannel({ name: 'down', type: 'webhook', config: { url: deadUrl }, secrets: { hmacSecret: HMAC_SECRET } });
    const tg = await alerts.createChannel({ name: 'tg-down', type: 'telegram', config: { chatId: 1, apiBase: dead.url }, secrets: { botToken: BOT_TOKEN } });
    await alerts.createRule({ name: 'down-rule', kind: 'node_offline', params: { nodes: ['n-down'] }, channels: [ch.id, tg.id], dedupSeconds: 0 });
    alerts.nodeOffline({ nodeName: 'n-down', reason: 'stale' });
    await until(() => alerts.channelView(alerts.getChannel(ch.id)).stats.failed === 1 && alerts.channelView(alerts.getChannel(tg.id)).stats.failed === 1, 'both failures counted');
    const stats = alerts.channelView(alerts.getChannel(ch.id)).stats;
    assert.equal(stats.retries, 2, 'maxAttempts 3: two retries');
    assert.equal(stats.delivered, 0);
    assert.match(stats.lastError!, /ECONNREFUSED/);
    const gaveUp = log.lines.filter((l) => l.msg === 'alert not delivered; giving up on it');
    assert.equal(gaveUp.length, 2);
    assert.ok(gaveUp.every((l) => l.attempts === 3));
    const metrics = await registry.getSingleMetricAsString('apiary_alert_deliveries_total');
    assert.match(metrics, /apiary_alert_deliveries_total\{type="webhook",outcome="failed"\} 1/);
    // telegram: this one and the refused sample of the telegram test above
    assert.match(metrics, /apiary_alert_deliveries_total\{type="telegram",outcome="failed"\} 2/);
    // Nothing secret was logged, anywhere in this suite.
    for (const secret of [HMAC_SECRET, BOT_TOKEN, SMTP_PASSWORD, 'slacksecretpath']) assert.ok(!log.text().includes(secret), `log leaks ${secret}`);
  });

  it('validation: unknown channel in a rule, bad params, duplicate names, a used channel cannot be deleted', async () => {
    await assert.rejects(alerts.createRule({ name: 'x', kind: 'node_offline', channels: ['nope'] }), /no alert channel nope/);
    const ch = alerts.listChannels()[0]!;
    await assert.rejects(alerts.createRule({ name: 'x', kind: 'attacker_events', params: { events: 0, minutes: 5 }, channels: [ch.id] }), /params of a attacker_events rule/);
    await assert.rejects(alerts.createRule({ name: 'hook-rule', kind: 'node_online', channels: [ch.id] }), /exists/);
    await assert.rejects(alerts.createChannel({ name: 'w', type: 'webhook', config: { url: 'ftp://x' }, secrets: { hmacSecret: HMAC_SECRET } }), /config of a webhook channel/);
    await assert.rejects(alerts.createChannel({ name: 'w', type: 'webhook', config: { url: 'http://x' }, secrets: { hmacSecret: 'short' } }), (err: Error) => /secrets of a webhook channel/.test(err.message) && !err.message.includes('short'));
    await assert.rejects(alerts.deleteChannel(ch.id), /used by the rule/);
  });
});
