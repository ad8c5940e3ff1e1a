#!/usr/bin/env python3
"""Per-line verdicts of Debian's fail2ban-regex, for logjail's compatibility test.

Runs fail2ban-regex exactly as `fail2ban-regex --usedns=no -o ip LOG FILTER` would (same option
parsing, same filter loading, same per-line test), but prints one JSON line per log line:
[line_number, [hosts of the failures fail2ban found on that line]]. Comment and blank lines are
skipped and not numbered, as fail2ban-regex skips them.
"""
import json
import sys

from fail2ban.client import fail2banregex as f2br


def process(self, test_lines):
    n = 0
    for line in test_lines:
        line = line.rstrip("\r\n")
        if line.startswith("#") or not line:
            continue
        n += 1
        _, ret, ignored = self.testRegex(line)
        hosts = [] if ignored else [str(r[1]) for r in ret]
        sys.stdout.write(json.dumps([n, hosts]) + "\n")


f2br.Fail2banRegex.process = process
f2br.Fail2banRegex.printStats = lambda self: True
f2br.exec_command_line(["--usedns=no", "-o", "ip"] + sys.argv[1:])
