"""The baseline bench.clock races: a plain httpx thread pool, as a data engineer would write it.

`main(["--base-url", URL, "--tokens", FILE, "--db", FILE, "--threads", "16"])`, which bench.clock
runs in a process of its own (`python -c`), so its time and memory are its own.

Reads every connection's profile (user_info) and every page of its videos (video_list) with 16
threads, retries 429s with exponential backoff, and writes profiles and videos into SQLite. No
budget, no orchestration, no state: the floor a user compares the project with. FILE holds a
JSON list of access tokens. Prints one JSON line: the profiles and, per token, the videos stored.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

USER_FIELDS = "open_id,union_id,display_name,follower_count,following_count,likes_count,video_count"
VIDEO_FIELDS = "id,create_time,title,duration,like_count,comment_count,share_count,view_count"
# 429s are retried until the request goes through (within about 15 minutes): at 1,000 accounts 16
# threads keep TikTok's window full, and 10 attempts were seen to run out (2026-12-07), which
# left the baseline without its rows instead of with a slower time.
MAX_ATTEMPTS = 40


def call(http: httpx.Client, method: str, path: str, token: str, **kwargs: object) -> dict:
    for attempt in range(MAX_ATTEMPTS):
        response = http.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
        )
        if response.status_code != 429:
            response.raise_for_status()
            return response.json()["data"]
        time.sleep(min(30.0, 2.0**attempt) * random.uniform(0.5, 1.0))  # full jitter backoff
    raise RuntimeError(f"{path}: still rate limited after {MAX_ATTEMPTS} attempts")


def fetch(http: httpx.Client, token: str) -> tuple[dict, list[dict]]:
    user = call(http, "GET", "/v2/user/info/", token, params={"fields": USER_FIELDS})["user"]
    videos, cursor = [], 0
    while True:
        page = call(
            http,
            "POST",
            "/v2/video/list/",
            token,
            params={"fields": VIDEO_FIELDS},
            json={"max_count": 20, "cursor": cursor},
        )
        videos += page["videos"]
        if not page["has_more"] or not page["videos"]:
            return user, videos
        cursor = page["cursor"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args(argv)
    with open(args.tokens) as tokens_file:
        tokens = json.load(tokens_file)
    limits = httpx.Limits(max_connections=args.threads)
    with (
        httpx.Client(base_url=args.base_url, timeout=30.0, limits=limits) as http,
        ThreadPoolExecutor(args.threads) as pool,
    ):
        results = list(pool.map(lambda token: fetch(http, token), tokens))
    db = sqlite3.connect(args.db)
    db.execute("CREATE TABLE IF NOT EXISTS profiles (open_id TEXT PRIMARY KEY, profile TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS videos (id TEXT PRIMARY KEY, open_id TEXT, video TEXT)")
    with db:
        for user, videos in results:
            db.execute(
                "INSERT OR REPLACE INTO profiles VALUES (?, ?)", (user["open_id"], json.dumps(user))
            )
            db.executemany(
                "INSERT OR REPLACE INTO videos VALUES (?, ?, ?)",
                [(video["id"], user["open_id"], json.dumps(video)) for video in videos],
            )
    profiles = db.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
    stored = dict(db.execute("SELECT open_id, COUNT(*) FROM videos GROUP BY open_id").fetchall())
    db.close()
    summary = {
        "profiles": profiles,
        "videos": [stored.get(user["open_id"], 0) for user, _ in results],
    }
    print(json.dumps(summary))
    return summary
