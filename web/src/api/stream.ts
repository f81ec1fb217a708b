// The live event stream (WebSocket /api/v1/events/stream, one JSON event per message). The session
// cookie authenticates the upgrade (same origin). Events are handed over in batches, once per
// animation frame, so 1000 events/s cost 60 renders a second rather than 1000.
import { useEffect, useRef, useState } from 'react';
import type { EventRow } from './types';

export type StreamState = 'connecting' | 'open' | 'closed';

export interface StreamFilter {
  node?: string;
  pot?: string;
  pot_type?: string;
  event_type?: string;
}

export function streamUrl(filter: StreamFilter): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v) p.set(k, v);
  const q = p.toString();
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/events/stream${q ? `?${q}` : ''}`;
}

/** Opens the stream while `enabled`; reconnects with backoff (1 s doubling to 30 s) after a close. */
export function useEventStream(filter: StreamFilter, onEvents: (events: EventRow[]) => void, enabled = true): StreamState {
  const [state, setState] = useState<StreamState>('connecting');
  const handler = useRef(onEvents);
  handler.current = onEvents;
  const key = JSON.stringify(filter);
  useEffect(() => {
    if (!enabled) {
      setState('closed');
      return;
    }
    let socket: WebSocket | undefined;
    let stopped = false;
    let retryMs = 1000;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let frame = 0;
    let pending: EventRow[] = [];
    const flush = () => {
      frame = 0;
      const batch = pending;
      pending = [];
      if (batch.length) handler.current(batch);
    };
    const open = () => {
      setState('connecting');
      socket = new WebSocket(streamUrl(JSON.parse(key) as StreamFilter));
      socket.onopen = () => {
        retryMs = 1000;
        setState('open');
      };
      socket.onmessage = (m) => {
        try {
          pending.push(JSON.parse(String(m.data)) as EventRow);
        } catch {
          return;
        }
        // requestAnimationFrame does not run in a background tab: a timer keeps the buffer bounded there.
        if (!frame) frame = document.hidden ? (setTimeout(flush, 250) as unknown as number) : requestAnimationFrame(flush);
      };
      socket.onclose = () => {
        setState('closed');
        if (stopped) return;
        retry = setTimeout(open, retryMs);
        retryMs = Math.min(retryMs * 2, 30_000);
      };
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(retry);
      if (frame) {
        cancelAnimationFrame(frame);
        clearTimeout(frame);
      }
      socket?.close();
    };
  }, [key, enabled]);
  return state;
}
