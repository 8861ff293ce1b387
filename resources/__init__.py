"""Everything that talks to the outside world: TikTok, CRMs, the state database, the warehouse."""

from resources.redaction import redact_request_logs

redact_request_logs()  # request URLs can carry secrets (webhook paths, keys in query strings)
