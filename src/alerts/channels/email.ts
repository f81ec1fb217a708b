// E-mail over SMTP with STARTTLS (required unless the channel says otherwise), via nodemailer.
// The server's certificate is verified: against the system CAs, or the channel's own `ca`.
import nodemailer from 'nodemailer';
import type { Alert } from '../types.js';
import { DeliveryError } from './http.js';
import { alertText } from './render.js';

export interface EmailSettings {
  host: string;
  port: number;
  from: string;
  to: string[];
  username?: string;
  password?: string;
  requireStartTls: boolean;
  ca?: string;
  servername?: string;
}

export async function sendEmail(s: EmailSettings, alert: Alert, timeoutMs: number): Promise<void> {
  const transport = nodemailer.createTransport({
    host: s.host,
    port: s.port,
    // Port 465 speaks TLS from the first byte; every other port upgrades with STARTTLS.
    secure: s.port === 465,
    requireTLS: s.requireStartTls,
    auth: s.username ? { user: s.username, pass: s.password ?? '' } : undefined,
    tls: { ...(s.ca ? { ca: s.ca } : {}), ...(s.servername ? { servername: s.servername } : {}), minVersion: 'TLSv1.2' },
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    logger: false,
    debug: false,
  });
  try {
    await transport.sendMail({
      from: s.from,
      to: s.to,
      subject: `${alert.test ? '[test] ' : ''}[apiary] ${alert.title}`.slice(0, 200),
      text: alertText(alert),
      headers: { 'X-Apiary-Alert': alert.id, 'X-Apiary-Rule': alert.rule.kind },
    });
  } catch (err) {
    const e = err as { code?: string; responseCode?: number; message?: string };
    // SMTP 5xx (other than 421-like) are permanent; connection problems and 4xx are worth a retry.
    const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500 && e.code !== 'ETLS';
    throw new DeliveryError(`smtp: ${e.code ?? 'error'}${e.responseCode ? ` ${e.responseCode}` : ''}`, !permanent);
  } finally {
    transport.close();
  }
}
