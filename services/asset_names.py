"""The asset names, defined once: `services` keys each connection's outcomes by them and
`pipelines/defs` builds the Dagster assets (and the daily job's step) with them. The daily
snapshot assets are named as their tables (`resources.warehouse.tiktok_tables`)."""

SYNC_ASSET = "connection_sync"  # the one multi-asset (and its step) that syncs a connection
PROFILE_ASSET = "tiktok_profile"
VIDEOS_ASSET = "tiktok_videos"
# The TikTok asset each kind of mapping source reads from.
SOURCE_ASSETS = {"profile": PROFILE_ASSET, "video": VIDEOS_ASSET}
