#!/usr/bin/env bash
# Installs what logjail's tests, demo and benchmarks need on a Debian machine: the firewall and
# network tools (run only inside network namespaces the tests create), and Debian's fail2ban as the
# reference the compatibility tests and benchmarks compare with. Idempotent: does nothing when all
# is there. Needs root to install; without root it only says what is missing.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have iptables      || need+=(iptables)
have ipset         || need+=(ipset)
have nft           || need+=(nftables)
have ip            || need+=(iproute2)
have fail2ban-regex || need+=(fail2ban python3-pyinotify)
have taskset       || need+=(util-linux)
have make          || need+=(make)
have curl          || need+=(curl)

if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  # Keep package scripts from starting services (fail2ban would start its own daemon): the tests
  # only use fail2ban's regex tester and its files.
  policy=/usr/sbin/policy-rc.d
  created=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
  fi
  trap '[[ $created -eq 1 ]] && rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! have go; then
  if [[ -x /usr/local/go/bin/go ]]; then
    echo "go is in /usr/local/go/bin: add it to PATH" >&2
  else
    echo "go is missing: install Go 1.24 or later" >&2
  fi
  exit 1
fi
go mod download
