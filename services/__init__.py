"""The per-connection work of the daily sync, with no Dagster in it.

`pipelines/defs/` (assets, schedules, sensors), the CLI and the benchmarks call this layer:
`services.connection_sync.sync_connections` syncs many connections concurrently, each one on its
own (profile, videos, quality checks, CRM tables, CRM pushes), and reports an outcome per
connection. Everything that talks to the outside world stays in `resources/`.
"""
