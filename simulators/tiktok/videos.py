"""One account's videos as they are now: the generated timeline plus what happened since.

The catalog generates videos 0..G-1 (newest first) and never changes. A creator's later actions
are kept apart, O(changes): videos posted after generation (index G + k for the k-th post, so
an index, and the id that packs it, never moves), caption edits and deletions.

Pages walk *positions*: posted videos first, newest first, then the generated timeline.
Position p < P is post P-1-p; position p >= P is generated index p - P. create_time falls
strictly with position, so a page boundary (cursor = create_time in ms) never skips a video.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from simulators.tiktok.config import INDEX_BITS
from simulators.tiktok.data import Catalog
from simulators.tiktok.text import caption, clip

ID_DIGITS = 19
INDEX_MASK = (1 << INDEX_BITS) - 1


@dataclass(frozen=True)
class Changes:
    """What happened to one account's videos after generation; a snapshot, never mutated."""

    posted: tuple[int, ...] = ()  # create_time of each posted video, in posting order
    captions: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    deleted: frozenset[int] = frozenset()


NO_CHANGES = Changes()


def pack_video_id(create_time: int, account: int, index: int) -> str:
    """Time in the high 32 bits like TikTok's ids; 19 digits for times between 1977 and 2043."""
    return str((create_time << 32) | (account << INDEX_BITS) | index)


@dataclass(frozen=True)
class AccountVideos:
    """Read-only view of one account's videos at one moment; O(1) to build."""

    catalog: Catalog
    account: int
    changes: Changes = NO_CHANGES

    @property
    def generated(self) -> int:
        return self.catalog.total_videos(self.account)

    @property
    def total(self) -> int:
        """Positions in the timeline, deleted videos included."""
        return len(self.changes.posted) + self.generated

    def next_index(self) -> int:
        """Index the next posted video gets."""
        return self.total

    def newest_time(self) -> int | None:
        """create_time of the newest video ever (deleted included), None for an empty account."""
        return self.time_at(0) if self.total else None

    def index_at(self, position: int) -> int:
        posted = len(self.changes.posted)
        if position < posted:
            return self.generated + posted - 1 - position
        return position - posted

    def position_of(self, index: int) -> int:
        generated, posted = self.generated, len(self.changes.posted)
        if index < generated:
            return index + posted
        return posted - 1 - (index - generated)

    def is_posted(self, index: int) -> bool:
        return index >= self.generated

    def create_time(self, index: int) -> int:
        if index >= self.generated:
            return self.changes.posted[index - self.generated]
        return self.catalog.create_time(self.account, index)

    def time_at(self, position: int) -> int:
        return self.create_time(self.index_at(position))

    def video_id(self, index: int) -> str:
        if index >= self.generated:
            return pack_video_id(self.create_time(index), self.account, index)
        return self.catalog.video_id(self.account, index)

    def decode(self, video_id: object) -> int | None:
        """Index of a well-formed id of this account's videos (deleted or not), else None."""
        if not isinstance(video_id, str) or not video_id.isdigit() or len(video_id) != ID_DIGITS:
            return None
        number = int(video_id)
        low = number & 0xFFFF_FFFF
        account, index = low >> INDEX_BITS, low & INDEX_MASK
        if account != self.account or index >= self.total:
            return None
        if index < self.generated:
            found = self.catalog.decode_video_id(video_id)
            return None if found is None else found[1]
        return index if number >> 32 == self.create_time(index) else None

    def visible(self, index: int) -> bool:
        return index not in self.changes.deleted

    def visible_count(self) -> int:
        total = self.total
        return total - sum(1 for index in self.changes.deleted if index < total)

    def caption(self, index: int) -> tuple[str, str]:
        """(title, video_description): an edited caption shows in both, cut to 150 characters."""
        edited = self.changes.captions.get(index)
        if edited is None:
            return caption(self.catalog.seed, self.account, index)
        return clip(edited), clip(edited)

    def start(self, cursor_ms: int | None) -> int:
        """First position with create_time * 1000 < cursor; 0 when no cursor was given."""
        if not cursor_ms:
            return 0
        low, high = 0, self.total
        while low < high:
            middle = (low + high) // 2
            if self.time_at(middle) * 1000 < cursor_ms:
                high = middle
            else:
                low = middle + 1
        return low

    def collect(self, start: int, limit: int) -> tuple[tuple[int, ...], bool]:
        """Up to `limit` visible positions from `start`, and whether a visible one follows them."""
        total, found = self.total, []
        position = start
        while position < total and len(found) < limit:
            if self.visible(self.index_at(position)):
                found.append(position)
            position += 1
        while position < total and not self.visible(self.index_at(position)):
            position += 1
        return tuple(found), position < total

    def rewind(self, start: int, limit: int) -> int:
        """Position where the `limit` visible videos just newer than `start` begin."""
        position = start
        while position > 0 and limit > 0:
            position -= 1
            if self.visible(self.index_at(position)):
                limit -= 1
        return position
