"""CLI: `python -m simulators.tiktok --port 8642` serves the simulator until Ctrl-C."""

from __future__ import annotations

import argparse
import logging

from simulators.tiktok.config import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, SimulatorConfig
from simulators.tiktok.simulator import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="TikTok OAuth + Display API v2 simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8642)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--accounts", type=int, default=5)
    parser.add_argument("--videos-per-account", type=int, default=30)
    parser.add_argument("--no-rate-limit", action="store_true", help="disable the 600/min limit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = SimulatorConfig(
        seed=args.seed,
        accounts=args.accounts,
        videos_per_account=args.videos_per_account,
        rate_limit_per_minute=None if args.no_rate_limit else 600,
    )
    print(f"TikTok simulator on http://{args.host}:{args.port} (Ctrl-C stops)")
    print(f"client_key={DEMO_CLIENT_KEY} client_secret={DEMO_CLIENT_SECRET}")
    serve(config, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
