// The human-readable form of an alert, for Slack, Telegram and e-mail.
import type { Alert } from '../types.js';

export function alertText(alert: Alert): string {
  const lines = [`${alert.test ? '[test] ' : ''}${alert.title}`, alert.text, `rule: ${alert.rule.name} (${alert.rule.kind}) · ${alert.at}`];
  if (alert.suppressed > 0) lines.push(`${alert.suppressed} more alert(s) of this rule were held back by its quiet period`);
  return lines.filter(Boolean).join('\n');
}
