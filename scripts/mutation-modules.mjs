// The security-critical modules under mutation testing, each with the files it mutates and the
// test files that exercise them (see stryker.config.mjs and scripts/mutation.mjs).
export const mutationModules = {
  'api-roles': {
    // Role ranks, bearer token extraction, URL redaction, the OpenAPI x-role transform, the
    // onRequest role check (line ranges: re-check them when http.ts changes).
    mutate: ['src/api/http.ts:52-98', 'src/api/http.ts:137-157'],
    tests: ['test/api/http.test.ts', 'test/api/role-check.test.ts', 'test/app/role-matrix.test.ts'],
  },
  access: {
    mutate: ['src/access/tokens.ts', 'src/access/routes.ts'],
    tests: ['test/access/tokens.test.ts', 'test/access/tokens-edges.test.ts', 'test/app/role-matrix.test.ts'],
  },
  authkeys: {
    mutate: ['src/authkeys/service.ts', 'src/authkeys/routes.ts'],
    tests: ['test/authkeys/authkeys.test.ts', 'test/authkeys/live-recheck.test.ts', 'test/authkeys/authkeys-edges.test.ts'],
  },
  'git-policy': {
    mutate: ['src/commands/git-policy.ts'],
    tests: ['test/commands/git-policy.test.ts', 'test/commands/git-policy-edges.test.ts'],
  },
  enrollment: {
    mutate: ['src/nodes/enrollment.ts', 'src/nodes/rate-limit.ts'],
    tests: ['test/nodes/enrollment.test.ts', 'test/nodes/enrollment-bounds.test.ts', 'test/nodes/enrollment-edges.test.ts', 'test/nodes/failure-limiter.test.ts'],
  },
  'hpfeeds-auth': {
    // auth-stores: the credential backends; connection.ts lines: AUTH, SUBSCRIBE/PUBLISH ACL, live re-check.
    mutate: ['src/hpfeeds/auth-stores.ts', 'src/hpfeeds/connection.ts:240-381'],
    tests: ['test/hpfeeds/auth-stores.test.ts', 'test/hpfeeds/auth-stores-edges.test.ts', 'test/hpfeeds/broker.test.ts'],
  },
  // The credential backends alone against their own tests (no broker.test.ts): a fast first pass.
  'hpfeeds-auth-stores': {
    mutate: ['src/hpfeeds/auth-stores.ts'],
    tests: ['test/hpfeeds/auth-stores.test.ts', 'test/hpfeeds/auth-stores-edges.test.ts'],
  },
  // The answer tracker alone against its unit test: a fast first pass (seconds per mutant).
  'command-tracker': {
    mutate: ['src/commands/tracker.ts'],
    tests: ['test/commands/tracker.test.ts'],
  },
  'command-state': {
    // tracker: what an answer means; store: the guarded status transitions.
    mutate: ['src/commands/tracker.ts', 'src/commands/store.ts:137-170'],
    tests: ['test/commands/tracker.test.ts', 'test/commands/delivery.test.ts', 'test/commands/api.test.ts'],
  },
};
