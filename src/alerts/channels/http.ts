// JSON over HTTP(S) for the webhook, Slack and Telegram channels, bounded by a timeout.
export class DeliveryError extends Error {
  override name = 'DeliveryError';
  constructor(
    message: string,
    /** False when retrying cannot help (the receiver refused the request as malformed). */
    readonly retryable = true,
  ) {
    super(message);
  }
}

export async function postJson(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; text: string }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'apiary-alerts', ...headers },
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    // fetch's own message ("fetch failed") hides the reason in `cause`; neither includes the URL.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause?.code ?? cause?.message ?? (err as Error).message);
    throw new DeliveryError(`request failed: ${why}`);
  }
  const text = (await res.text().catch(() => '')).slice(0, 2000);
  if (res.status >= 200 && res.status < 300) return { status: res.status, text };
  // 4xx other than 408/429 will not get better by retrying the same request.
  const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
  throw new DeliveryError(`receiver answered HTTP ${res.status}`, retryable);
}
