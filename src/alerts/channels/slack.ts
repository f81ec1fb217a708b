// Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat accept the same shape):
// `text` as the fallback and notification line, one mrkdwn section block with the details.
import type { Alert } from '../types.js';
import { postJson } from './http.js';
import { alertText } from './render.js';

/** Slack's mrkdwn treats &, < and > as control characters. */
const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function slackPayload(alert: Alert): { text: string; blocks: unknown[] } {
  const text = alertText(alert);
  return {
    text: escape(`${alert.test ? '[test] ' : ''}${alert.title}`),
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: escape(text).slice(0, 3000) } }],
  };
}

export async function sendSlack(url: string, alert: Alert, timeoutMs: number): Promise<void> {
  await postJson(url, JSON.stringify(slackPayload(alert)), {}, timeoutMs);
}
