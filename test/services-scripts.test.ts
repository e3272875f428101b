// scripts/lib/packaged-units.sh on a copy of a system's units (VIGIL_SYSTEM_ROOT): the packaged
// daemons the test services install must never start at boot, and nothing of the real machine is touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, readlinkSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const haveSystemctl = spawnSync('systemctl', ['--version']).status === 0;

// A root with units laid out as Debian's packages leave them: the unit files, and enabled.
function fakeRoot(units: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'vigil-units-'));
  mkdirSync(join(root, 'lib/systemd/system'), { recursive: true });
  for (const [unit, wantedBy] of Object.entries(units)) {
    const body = unit.endsWith('.socket') ? '[Socket]\nListenStream=4369\n' : '[Service]\nExecStart=/bin/true\n';
    writeFileSync(join(root, 'lib/systemd/system', unit), `[Unit]\nDescription=${unit}\n${body}[Install]\nWantedBy=${wantedBy}\n`);
    mkdirSync(join(root, 'etc/systemd/system', `${wantedBy}.wants`), { recursive: true });
    symlinkSync(`/lib/systemd/system/${unit}`, join(root, 'etc/systemd/system', `${wantedBy}.wants`, unit));
  }
  return root;
}

function run(root: string, script: string) {
  const r = spawnSync('bash', ['-c', `set -euo pipefail; log() { printf '[services] %s\\n' "$*" >&2; }; die() { log "ERROR: $*"; exit 1; }; source scripts/lib/packaged-units.sh; ${script}`],
    // stdin not a socket: bash would read ~/.bashrc as if started by sshd.
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, VIGIL_SYSTEM_ROOT: root } });
  return { code: r.status, stderr: r.stderr };
}

const isEnabled = (root: string, unit: string) => spawnSync('systemctl', [`--root=${root}`, 'is-enabled', unit], { encoding: 'utf8' }).stdout.trim();

test('disable_packaged_units disables and masks installed units (idempotent); warn_packaged_units only says how', { skip: !haveSystemctl && 'needs systemctl' }, () => {
  const units = { 'rabbitmq-server.service': 'multi-user.target', 'epmd.service': 'multi-user.target', 'epmd.socket': 'sockets.target' };
  const root = fakeRoot(units);
  for (const unit of Object.keys(units)) assert.equal(isEnabled(root, unit), 'enabled', unit);

  const first = run(root, 'disable_packaged_units rabbitmq-server.service epmd.service epmd.socket not-installed.service');
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /disabling and masking the packaged units rabbitmq-server\.service epmd\.service epmd\.socket\n/);
  for (const [unit, wantedBy] of Object.entries(units)) {
    assert.equal(isEnabled(root, unit), 'masked', unit);
    assert.equal(readlinkSync(join(root, 'etc/systemd/system', unit)), '/dev/null');
    assert.ok(!existsSync(join(root, 'etc/systemd/system', `${wantedBy}.wants`, unit)), `${unit} no longer wanted by ${wantedBy}`);
  }
  assert.ok(!existsSync(join(root, 'etc/systemd/system/not-installed.service')), 'a unit that is not installed is not masked');
  const again = run(root, 'disable_packaged_units rabbitmq-server.service epmd.service epmd.socket');
  assert.equal(again.code, 0);
  assert.equal(again.stderr, '', 'nothing left to do');

  const other = fakeRoot({ 'prometheus-alertmanager.service': 'multi-user.target' });
  const warned = run(other, 'warn_packaged_units prometheus-alertmanager.service');
  assert.equal(warned.code, 0);
  assert.match(warned.stderr, /WARNING: prometheus-alertmanager\.service .* systemctl disable prometheus-alertmanager\.service && systemctl mask prometheus-alertmanager\.service/);
  assert.equal(isEnabled(other, 'prometheus-alertmanager.service'), 'enabled', 'a package that was there before is left as it was');
});

test('every service script that installs a Debian package masks its units right after', () => {
  const dir = join(ROOT, 'scripts/services');
  let installs = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sh'))) {
    const lines = readFileSync(join(dir, file), 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (!/^\s*apt_install_no_start /.test(line)) return;
      installs++;
      assert.match(lines.slice(i + 1, i + 4).join('\n'), /disable_packaged_units \S+/, `${file}:${i + 1}`);
    });
  }
  assert.ok(installs >= 2, 'rabbitmq and alertmanager install packages');
});
