"""Data-quality checks on the TikTok tables, and the connection freshness job."""
