// Generic JSON webhook: the alert as the body, signed so the receiver can trust and date it.
//   X-Apiary-Timestamp: <unix seconds>
//   X-Apiary-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
// Signing the timestamp with the body lets a receiver refuse replays: it recomputes the HMAC and
// rejects timestamps older than a few minutes. X-Apiary-Delivery is the alert id (idempotency).
import { createHmac } from 'node:crypto';
import type { Alert } from '../types.js';
import { postJson } from './http.js';

export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export async function sendWebhook(url: string, hmacSecret: string, alert: Alert, timeoutMs: number, nowMs = Date.now()): Promise<void> {
  const body = JSON.stringify(alert);
  const timestamp = String(Math.floor(nowMs / 1000));
  await postJson(url, body, { 'x-apiary-timestamp': timestamp, 'x-apiary-signature': webhookSignature(hmacSecret, timestamp, body), 'x-apiary-delivery': alert.id }, timeoutMs);
}
