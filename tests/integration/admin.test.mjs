// `citycmd admin`: user management without the server, and the audit trail's
// tamper evidence, checked the way an auditor would: with the command.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import path from 'node:path';
import { BIN, startServer, post, tempDir } from '../lib/harness.mjs';

function admin(args, input = '') {
  return spawnSync(BIN, ['admin', ...args], { input, encoding: 'utf8', timeout: 20000 });
}
const sql = (state, q) => execFileSync('sqlite3', ['-batch', path.join(state, 'citycmd.db'), q], { encoding: 'utf8' }).trim();

describe('citycmd admin', () => {
  const state = tempDir();

  test('add-user reads the password from stdin and stores only an Argon2id hash', () => {
    const r = admin(['add-user', '--state', state, '--username', 'wang.fang', '--role', 'dispatcher,supervisor',
      '--agency', 'fire', '--display-name', '王芳'], 'a long enough secret\n');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /added user wang\.fang \(id 1\)/);
    const hash = sql(state, "SELECT password_hash FROM users WHERE username = 'wang.fang'");
    assert.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    assert.doesNotMatch(hash, /a long enough secret/);
  });

  test('bad input is refused with a reason and exit 2; duplicates with exit 1', () => {
    const cases = [
      [['--username', 'ok.name', '--role', 'dispatcher', '--agency', 'fire'], 'short\n', /at least 10 characters/],
      [['--username', 'ok.name', '--role', 'dispatcher', '--agency', 'fire'], '', /no password/],
      [['--username', 'ok.name', '--role', 'wizard', '--agency', 'fire'], 'long enough pw\n', /unknown role 'wizard'/],
      [['--username', 'ok.name', '--role', 'dispatcher', '--agency', 'navy'], 'long enough pw\n', /--agency/],
      [['--username', 'Bad Name', '--role', 'dispatcher', '--agency', 'fire'], 'long enough pw\n', /--username/],
      [['--username', 'ok.name', '--role', 'leader', '--agency', 'fire', '--leads', 'fire,mars'], 'long enough pw\n', /unknown agency 'mars'/],
    ];
    for (const [args, input, re] of cases) {
      const r = admin(['add-user', '--state', state, ...args], input);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    const dup = admin(['add-user', '--state', state, '--username', 'wang.fang', '--role', 'dispatcher', '--agency', 'fire'], 'a long enough secret\n');
    assert.equal(dup.status, 1);
    assert.match(dup.stderr, /already exists/);
    assert.equal(admin(['frobnicate', '--state', state]).status, 2);
    assert.equal(admin(['list-users']).status, 2, '--state is required');
  });

  test('list-users, disable-user and enable-user', () => {
    assert.equal(admin(['add-user', '--state', state, '--username', 'auditor1', '--role', 'auditor', '--agency', 'government'], 'another long secret\n').status, 0);
    let r = admin(['disable-user', '--state', state, '--username', 'wang.fang']);
    assert.equal(r.status, 0, r.stderr);
    r = admin(['list-users', '--state', state]);
    assert.match(r.stdout, /wang\.fang\s+王芳\s+fire\s+dispatcher,supervisor\s+disabled/);
    assert.match(r.stdout, /auditor1\s+auditor1\s+government\s+auditor\s+active/);
    assert.equal(admin(['enable-user', '--state', state, '--username', 'wang.fang']).status, 0);
    assert.match(admin(['list-users', '--state', state]).stdout, /wang\.fang .* active/);
    assert.equal(admin(['disable-user', '--state', state, '--username', 'nobody']).status, 1);
  });

  test('every change is in the audit trail with actor and source, and the chain verifies', async () => {
    const s = await startServer({ state });
    try {
      assert.equal((await post(s.url, '/api/v1/journal', { text: 'audited entry' })).status, 201);
    } finally { await s.stop(); }
    const rows = sql(state, 'SELECT actor, action, object, source, outcome FROM audit ORDER BY seq').split('\n');
    assert.match(rows[0], /^admin:[^|]+\|user\.created\|user\/1\|local\|ok$/);
    assert.match(rows[1], /^admin:[^|]+\|user\.created\|user\/2\|local\|ok$/);
    assert.match(rows.at(-1), /\|journal\.created\|journal\/1\|127\.0\.0\.1\|ok$/);
    const r = admin(['verify-audit', '--state', state]);
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, new RegExp(`audit trail intact: ${rows.length} rows`));
  });

  test('verify-audit names the row where an edit breaks the chain', () => {
    const copy = tempDir();
    execFileSync('cp', [path.join(state, 'citycmd.db'), path.join(copy, 'citycmd.db')]);
    sql(copy, "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'someone-else' WHERE seq = 2");
    const r = admin(['verify-audit', '--state', copy]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /audit trail BROKEN at row 2: .*edited/);
  });

  test('verify-audit notices deleted rows, in the middle or at the end', () => {
    const mid = tempDir();
    execFileSync('cp', [path.join(state, 'citycmd.db'), path.join(mid, 'citycmd.db')]);
    sql(mid, 'DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2');
    let r = admin(['verify-audit', '--state', mid]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /BROKEN at row 3/);
    const end = tempDir();
    execFileSync('cp', [path.join(state, 'citycmd.db'), path.join(end, 'citycmd.db')]);
    sql(end, 'DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)');
    r = admin(['verify-audit', '--state', end]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /rows removed at the end/);
  });
});
