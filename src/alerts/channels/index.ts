// Delivery of one alert to one channel, whatever its type.
import type { Alert, AlertChannel } from '../types.js';
import { sendEmail } from './email.js';
import { DeliveryError } from './http.js';
import { sendSlack } from './slack.js';
import { sendTelegram } from './telegram.js';
import { sendWebhook } from './webhook.js';

export { DeliveryError } from './http.js';
export { webhookSignature } from './webhook.js';
export { slackPayload } from './slack.js';
export { alertText } from './render.js';

export async function deliver(channel: AlertChannel, alert: Alert, timeoutMs: number): Promise<void> {
  const c = channel.config as Record<string, any>;
  const s = channel.secrets;
  switch (channel.type) {
    case 'webhook':
      return sendWebhook(c.url, s.hmacSecret ?? '', alert, timeoutMs);
    case 'slack':
      return sendSlack(s.url ?? '', alert, timeoutMs);
    case 'telegram':
      return sendTelegram(c.apiBase, s.botToken ?? '', c.chatId, alert, timeoutMs);
    case 'email':
      return sendEmail({ ...(c as any), password: s.password }, alert, timeoutMs);
    default:
      throw new DeliveryError(`unknown channel type ${String(channel.type)}`, false);
  }
}
