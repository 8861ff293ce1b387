"""Run in a separate process by tests/resources/test_leases.py: hold one connection's lease.

`python -m tests.resources.lease_worker URL HOLDER NAME HOLD_S LOG` takes the lease on NAME as
HOLDER, appends `HOLDER start <time>` and `HOLDER end <time>` around HOLD_S seconds of "sync" to
LOG, and exits 0; or exits 3 with the ConnectionBusy message when it never got the lease.
"""

from __future__ import annotations

import sys
import time

from resources.database import make_engine
from resources.leases import ConnectionBusy, LeaseStore


def main() -> None:
    url, holder, name, hold_s, log = sys.argv[1:6]
    leases = LeaseStore(make_engine(url), holder=holder, wait_s=float(sys.argv[6]))
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
