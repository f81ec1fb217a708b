// `apiary user` end to end: separate processes on a real database file, then a composed core on the
// same file: the users the CLI made log in over HTTP, and a user disabled by the CLI while the core
// runs loses their session (REST at once, the WebSocket within a second).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startTestCore, type TestCore } from '../helpers/core.js';
import { tempDir } from '../helpers/tmp.js';
import { apiary } from './run.js';

describe('apiary user', () => {
  const dir = tempDir('apiary-cli-user-');
  const db = join(dir.path, 'users.sqlite');
  let t: TestCore | undefined;
  after(async () => {
    await t?.close();
    dir.cleanup();
  });

  it('create (password from stdin, from a file, or generated and printed once), list, passwd, disable; mistakes exit 1 or 2; changes are audited', async () => {
    const fromStdin = await apiary(['user', 'create', 'alice', '--role', 'operator', '--password-stdin', '--db', db], {}, 30_000, 'alice first password\nignored line\n');
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.match(fromStdin.stdout, /^id: [0-9a-f-]{36}\nusername: alice\nrole: operator\n$/);

    const generated = await apiary(['user', 'create', 'Bob', '--role', 'viewer', '--db', db]);
    assert.equal(generated.code, 0, generated.stderr);
    const bobPassword = /^password: (\S+)$/m.exec(generated.stdout)?.[1];
    assert.ok(bobPassword && bobPassword.length >= 24, generated.stdout);
    assert.match(generated.stdout, /shown once/);

    const badRole = await apiary(['user', 'create', 'carol', '--role', 'root', '--db', db]);
    assert.equal(badRole.code, 2);
    assert.match(badRole.stderr, /--role must be one of viewer, operator, admin/);
    const short = await apiary(['user', 'create', 'carol', '--role', 'viewer', '--password-stdin', '--db', db], {}, 30_000, 'short\n');
    assert.equal(short.code, 2);
    assert.match(short.stderr, /at least 12 characters/);
    const duplicate = await apiary(['user', 'create', 'BOB', '--role', 'viewer', '--db', db]);
    assert.equal(duplicate.code, 1);
    assert.match(duplicate.stderr, /exists/);
    const missing = await apiary(['user', 'disable', 'nobody', '--db', db]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no user nobody/);
    assert.equal((await apiary(['user', 'frobnicate', '--db', db])).code, 2);
    const help = await apiary(['user', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /apiary user create USERNAME --role/);

    const file = join(dir.path, 'pw.txt');
    writeFileSync(file, 'alice second password\n');
    const passwd = await apiary(['user', 'passwd', 'ALICE', '--password-file', file, '--db', db]);
    assert.equal(passwd.code, 0, passwd.stderr);
    assert.doesNotMatch(passwd.stdout, /password: /, 'a given password is not echoed');

    const list = await apiary(['user', 'list', '--db', db]);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^ID\tUSERNAME\tROLE\tCREATED\tLAST LOGIN\tDISABLED\n/);
    assert.match(list.stdout, /\talice\toperator\t\S+\t-\t-\n/);
    assert.match(list.stdout, /\tBob\tviewer\t/);
    assert.doesNotMatch(list.stdout, /scrypt|password/i);
  });

  it('a core on the same database logs the CLI users in; a CLI disable ends the session and its WebSocket', async () => {
    t = await startTestCore({ args: ['--db', db] });
    const login = (username: string, password: string) => t!.api('POST', '/api/v1/session', { body: { username, password } });
    assert.equal((await login('alice', 'alice first password')).status, 401, 'passwd replaced it');
    assert.equal((await login('alice', 'alice second password')).status, 200);
    const bobPassword = (await apiary(['user', 'passwd', 'bob', '--db', db])).stdout.match(/^password: (\S+)$/m)?.[1];
    assert.ok(bobPassword, 'passwd without a password generates one');
    const bob = await login('bob', bobPassword);
    assert.equal(bob.status, 200);
    assert.equal(bob.body.user.username, 'Bob');
    const cookie = /^(apiary_session=[^;]+)/.exec(bob.headers.get('set-cookie') ?? '')![1]!;

    const ws = new WebSocket(`${t.base.replace('http', 'ws')}/api/v1/events/stream`, { headers: { cookie, origin: t.base } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
    });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const disable = await apiary(['user', 'disable', 'bob', '--db', db]);
    assert.equal(disable.code, 0, disable.stderr);
    assert.equal((await t.api('GET', '/api/v1/session', { headers: { cookie } })).status, 401, 'REST refuses at once');
    const code = await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r('still open after 5 s'), 5000).unref())]);
    assert.equal(code, 1008, 'the core closes the WebSocket within its 1 s check');
    assert.equal((await login('bob', bobPassword)).status, 401);
    const list = await apiary(['user', 'list', '--db', db]);
    assert.match(list.stdout, /\tBob\tviewer\t\S+\t\S+Z\t\S+Z\n/, 'last login and disabled times listed');

    const audit = (await t.api('GET', '/api/v1/audit?action=cli.user.*', { token: t.adminToken })).body.entries as any[];
    assert.deepEqual(audit.map((e) => e.action).sort(), ['cli.user.create', 'cli.user.create', 'cli.user.create', 'cli.user.create', 'cli.user.create', 'cli.user.disable', 'cli.user.disable', 'cli.user.frobnicate', 'cli.user.passwd', 'cli.user.passwd'].sort());
    for (const e of audit) assert.equal(e.actor.kind, 'cli');
    const passwdEntry = audit.find((e) => e.action === 'cli.user.passwd' && e.changes?.['password-file']);
    assert.equal(passwdEntry.changes['password-file'], '[masked]');
  });
});
