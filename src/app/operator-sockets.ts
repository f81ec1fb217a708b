// Open operator WebSockets (live events, console) authenticate once, at their upgrade. This keeps
// them honest afterwards: revoking a token or ending a console session closes its sockets at once
// when it happens through this core's API (or another core's, through session routing), and within
// a second when another process (the CLI) changed the database or the session expired.
import type { FastifyBaseLogger } from 'fastify';
import type { TokenService } from '../access/index.js';
import type { OperatorSockets } from '../api/index.js';
import type { SessionRouting } from '../cluster-routing/index.js';
import { UserService } from '../users/index.js';

/** Wires the revocation notices and starts the once-a-second check; returns its timer. */
export function closeRevokedSockets(sockets: OperatorSockets, tokens: TokenService, users: UserService, routing: SessionRouting | undefined, log: FastifyBaseLogger): NodeJS.Timeout {
  tokens.onRevoked((id) => sockets.closeFor(id));
  const closeSessionSockets = (keys: readonly string[]) => {
    for (const key of keys) sockets.closeFor(key, 'session ended');
  };
  users.onSessionsEnded(closeSessionSockets);
  if (routing) {
    // ...and on every other instance at once, not at their next database check.
    tokens.onRevoked(routing.onTokensRevoked((id) => sockets.closeFor(id)));
    users.onSessionsEnded(routing.onSessionsEnded(closeSessionSockets));
  }
  // The token and session lookups are asynchronous (their stores may be PostgreSQL): a check
  // still running when the next tick comes is not doubled.
  let checkingTokens = false;
  let checkingSessions = false;
  const timer = setInterval(() => {
    const open = sockets.operatorIds();
    if (open.length === 0) return;
    const sessionKeys = open.filter((key) => UserService.isSocketKey(key));
    const tokenIds = open.filter((key) => !UserService.isSocketKey(key));
    if (tokenIds.length > 0 && !checkingTokens) {
      checkingTokens = true;
      tokens
        .revokedAmong(tokenIds)
        .then((revoked) => {
          for (const id of revoked) sockets.closeFor(id);
        })
        .catch((err) => log.error({ err }, 'could not check the tokens of open WebSockets; retried in a second'))
        .finally(() => {
          checkingTokens = false;
        });
    }
    if (sessionKeys.length === 0 || checkingSessions) return;
    checkingSessions = true;
    users
      .endedAmong(sessionKeys)
      .then((ended) => {
        for (const key of ended) sockets.closeFor(key, 'session ended');
      })
      .catch((err) => log.error({ err }, 'could not check the console sessions of open WebSockets; retried in a second'))
      .finally(() => {
        checkingSessions = false;
      });
  }, 1000);
  timer.unref();
  return timer;
}
