"""The connection registry: one row per authorized TikTok account and everything kept about it in
the state database (tokens at rest, leases, audit trail), and the ways connections come and go.
"""
