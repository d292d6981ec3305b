#!/usr/bin/env bash
# qstrata developer entry point: `bash scripts/dev.sh run` (set up, then `qstrata up`: the built-in network) and
# `bash scripts/dev.sh test` (set up, then the whole test suite). Set-up is idempotent: it installs
# the Debian packages that are missing (as root, or through sudo), creates .venv/ in the checkout and
# installs qstrata into it with its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  gcc python3-dev python3-venv   # libyang's CFFI extension is compiled at install time
  libyang2-dev                   # libyang 2.1.30 headers: the Python package libyang==2.8.0 builds on them
  libyang-tools                  # yanglint, used by tests and bench_validate.py
  yangcli                        # Debian's NETCONF client, used by interoperability tests
  prometheus                     # collectors: tests scrape the exposition endpoint with the real server
  nats-server                    # collectors: JetStream output/input and target leases, tested against it
  netconfd openssh-server        # qstrata conform is tested against Debian's netconfd behind a private sshd
  chromium                       # collectors: the dashboard's browser test loads it headless
  tmux                           # tests/e2e/test_up_as_user.py watches `qstrata up`'s status table in a real terminal
)

setup_apt() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "qstrata setup: installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_venv() {
  local python="${PYTHON:-python3}"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  local stamp=.venv/.qstrata-installed
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || ! .venv/bin/python -c "import qstrata.bindings" 2>/dev/null; then
    echo "qstrata setup: installing qstrata and its dependencies into .venv/"
    .venv/bin/python -m pip install -q --upgrade pip
    # setuptools announces every editable install ("be careful with folders..."): information, not a problem
    PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install -q -e '.[test]'
    touch "$stamp"
  fi
}

setup() {
  if command -v dpkg-query >/dev/null 2>&1; then setup_apt; fi
  setup_venv
}

case "${1:-}" in
  setup) setup ;;
  run) setup; shift; exec .venv/bin/qstrata up "$@" ;;
  # Two workers, each taking whole files (module fixtures stay shared): the suite spends much of its
  # time waiting on agents and servers, so two workers halve its wall time on two cores.
  # QSTRATA_TEST_WORKERS=0 runs it in one process.
  test) setup; shift; exec .venv/bin/python -m pytest -n "${QSTRATA_TEST_WORKERS:-2}" --dist loadfile "$@" ;;
  *) echo "usage: bash scripts/dev.sh {run|test|setup} [args...]" >&2; exit 2 ;;
esac
