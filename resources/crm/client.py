"""What a CRM client offers the push, declared as Protocols (no client is probed for a method).

Every target's client upserts batches (`CrmClient`); a target whose preset says `can_archive`
also archives (`ArchivingClient`). `service` is the target's kind, as in its preset.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from resources.crm.http import CrmHttp
from resources.crm.models import Archive, BatchResult, Record


class CrmClient(Protocol):
    """Upserts batches of records by their external id `key`, one result per request."""

    service: str
    batch_size: int
    http: CrmHttp

    def push_batches(self, records: Sequence[Record], key: str) -> Iterator[BatchResult]: ...

    def close(self) -> None: ...


class ArchivingClient(CrmClient, Protocol):
    """A client that also archives (or deletes) records; results carry `BatchResult.archived`."""

    def archive_batches(self, archives: Sequence[Archive], key: str) -> Iterator[BatchResult]: ...
