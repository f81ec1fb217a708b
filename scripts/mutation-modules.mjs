// The security-critical modules under mutation testing, each with the files it mutates and the
// test files that exercise them (see stryker.config.mjs and scripts/mutation.mjs).
export const mutationModules = {
  'api-roles': {
    // Role ranks, bearer token extraction, URL redaction, the OpenAPI x-role transform, the
    // onRequest check (token, console session cookie, CSRF, WebSocket origin), the cookie and
    // origin helpers (line ranges: re-check them when http.ts changes).
    mutate: ['src/api/http.ts:98-176', 'src/api/http.ts:263-328', 'src/api/cookies.ts'],
    // Fast tests on a bare server (role-matrix.test.ts boots a core per run: too slow per mutant).
    tests: ['test/api/http.test.ts', 'test/api/role-check.test.ts', 'test/api/session-check.test.ts'],
  },
  access: {
    // The token SQL moved into the stores (sqlite-store.ts here; the contract suite runs it too).
    mutate: ['src/access/tokens.ts', 'src/access/routes.ts', 'src/access/sqlite-store.ts'],
    tests: ['test/access/tokens.test.ts', 'test/access/tokens-edges.test.ts', 'test/access/store-contract.test.ts', 'test/app/role-matrix.test.ts'],
  },
  authkeys: {
    mutate: ['src/authkeys/service.ts', 'src/authkeys/routes.ts', 'src/authkeys/sqlite-store.ts'],
    tests: ['test/authkeys/authkeys.test.ts', 'test/authkeys/live-recheck.test.ts', 'test/authkeys/authkeys-edges.test.ts', 'test/authkeys/store-contract.test.ts'],
  },
  'git-policy': {
    mutate: ['src/commands/git-policy.ts'],
    tests: ['test/commands/git-policy.test.ts', 'test/commands/git-policy-edges.test.ts'],
  },
  enrollment: {
    mutate: ['src/nodes/enrollment.ts', 'src/nodes/rate-limit.ts', 'src/nodes/guess-limiter.ts'],
    tests: ['test/nodes/enrollment.test.ts', 'test/nodes/enrollment-bounds.test.ts', 'test/nodes/enrollment-edges.test.ts', 'test/nodes/failure-limiter.test.ts', 'test/nodes/guess-limiter.test.ts'],
  },
  // The hpfeeds broker's credential backends (reference JSON file with hot reload, env, memory,
  // composite) against their own tests.
  // The TOTP guess limits alone against their unit test: a fast first pass (enrollment runs them
  // against every enrollment test, ~30 s per mutant).
  'guess-limiter': {
    mutate: ['src/nodes/guess-limiter.ts'],
    tests: ['test/nodes/guess-limiter.test.ts'],
  },
  'hpfeeds-auth-stores': {
    mutate: ['src/hpfeeds/auth-stores.ts'],
    tests: ['test/hpfeeds/auth-stores.test.ts', 'test/hpfeeds/auth-stores-edges.test.ts'],
  },
  'hpfeeds-acl': {
    // connection.ts: sameBytes, SUBSCRIBE/PUBLISH ACL (handleFrame, onRawPublish's ident and channel checks),
    // AUTH, applyKey (live re-check); broker.ts: revalidateIdents. Line ranges: re-check them when
    // those files change. Only the auth/ACL tests over real sockets (~2 s; broker.test.ts takes
    // ~25 s per mutant and checks none of this).
    mutate: ['src/hpfeeds/connection.ts:53-58', 'src/hpfeeds/connection.ts:212-263', 'src/hpfeeds/connection.ts:276-395', 'src/hpfeeds/broker.ts:321-346'],
    tests: ['test/hpfeeds/broker-auth.test.ts'],
  },
  // The answer tracker alone against its unit test: a fast first pass (seconds per mutant).
  'command-tracker': {
    mutate: ['src/commands/tracker.ts'],
    tests: ['test/commands/tracker.test.ts'],
  },
  'command-state': {
    // tracker: what an answer means; store: the guarded status transitions and the queries the
    // delivery and expiry loops decide on (line range: re-check it when sqlite-store.ts changes). Both
    // against fast tests over the real code and a real SQLite file (no Redis).
    mutate: ['src/commands/tracker.ts', 'src/commands/sqlite-store.ts:44-150'],
    tests: ['test/commands/tracker.test.ts', 'test/commands/store-contract.test.ts'],
  },
};
