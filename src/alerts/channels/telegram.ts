// Telegram Bot API: POST <apiBase>/bot<token>/sendMessage {chat_id, text}. The base URL is
// configurable (a local Bot API server; tests point it at 127.0.0.1). The URL holds the bot
// token: it is never logged, and errors never quote it.
import type { Alert } from '../types.js';
import { DeliveryError, postJson } from './http.js';
import { alertText } from './render.js';

/** Telegram refuses messages longer than 4096 characters. */
const MAX_TEXT = 4096;

export async function sendTelegram(apiBase: string, botToken: string, chatId: string | number, alert: Alert, timeoutMs: number): Promise<void> {
  const url = `${apiBase.replace(/\/+$/, '')}/bot${botToken}/sendMessage`;
  const body = JSON.stringify({ chat_id: chatId, text: alertText(alert).slice(0, MAX_TEXT), disable_web_page_preview: true });
  const res = await postJson(url, body, {}, timeoutMs);
  let ok = false;
  try {
    ok = (JSON.parse(res.text) as { ok?: unknown }).ok === true;
  } catch {
    ok = false;
  }
  if (!ok) throw new DeliveryError('Telegram answered without ok:true');
}
