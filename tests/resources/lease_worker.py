"""Run in a separate process by tests/resources/test_leases.py: hold one connection's lease.

`python -m tests.resources.lease_worker URL HOLDER NAME HOLD_S LOG [WAIT_S [TTL_S RENEW_S]]`
takes the lease on NAME as HOLDER, appends `HOLDER start <time>` and `HOLDER end <time>` around
HOLD_S seconds of "sync" to LOG, and exits 0; or exits 3 with the ConnectionBusy message when it
never got the lease. TTL_S and RENEW_S shorten the lease and its heartbeat, so a test can watch
renewals happen without waiting minutes.
"""

from __future__ import annotations

import sys
import time

from resources.connections.leases import LEASE_TTL_S, RENEW_EVERY_S, ConnectionBusy, LeaseStore
from resources.database import make_engine


def main() -> None:
    url, holder, name, hold_s, log = sys.argv[1:6]
    wait_s = float(sys.argv[6]) if len(sys.argv) > 6 else 30.0
    ttl_s = float(sys.argv[7]) if len(sys.argv) > 7 else LEASE_TTL_S
    renew_s = float(sys.argv[8]) if len(sys.argv) > 8 else RENEW_EVERY_S
    leases = LeaseStore(
        make_engine(url), holder=holder, wait_s=wait_s, ttl_s=ttl_s, renew_every_s=renew_s
    )
    try:
        with leases.hold(name):
            with open(log, "a", encoding="utf-8") as out:
                out.write(f"{holder} start {time.time()}\n")
            time.sleep(float(hold_s))
            with open(log, "a", encoding="utf-8") as out:
                out.write(f"{holder} end {time.time()}\n")
    except ConnectionBusy as err:
        print(err, file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
