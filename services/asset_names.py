"""The asset names, defined once: `services` keys each connection's outcomes by them and
`pipelines/defs` builds the Dagster assets (and the daily job's step) with them."""

from resources.warehouse import tiktok_tables as tables

SYNC_ASSET = "connection_sync"  # the one multi-asset (and its step) that syncs a connection
PROFILE_ASSET = "tiktok_profile"
VIDEOS_ASSET = "tiktok_videos"
# The daily snapshots are assets named as their tables.
PROFILE_STATS_ASSET = tables.PROFILE_STATS_DAILY
VIDEO_METRICS_ASSET = tables.VIDEO_METRICS_DAILY
# The TikTok asset each kind of mapping source reads from.
SOURCE_ASSETS = {"profile": PROFILE_ASSET, "video": VIDEOS_ASSET}
