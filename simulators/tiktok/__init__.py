"""TikTok OAuth + Display API v2 simulator: demo mode, tests and benchmarks.

Behaves as /work/shared/docs/tiktok-api.md describes, with a knob for every point that TikTok's
docs leave open, and injectable faults for every way the real API has been seen to misbehave.

The creators live from day to day, so a daily sync can be tested over several days. Counts and
video metrics grow per whole day of the simulator's clock, and `TikTokSimulator` has the levers:

- `post_video(account, create_time=None) -> str`: a new video, the account's newest (listed
  first, queryable, counted in video_count); create_time defaults to the simulator's now.
- `edit_caption(account, video_id, text)`: title, video_description and embed_html show `text`.
- `delete_video(account, video_id)`: gone from list, query and video_count.
- `advance_days(days=1, churn=True) -> DayChanges`: the clock moves whole days (a ManualClock
  advances, a real-time clock gets an offset inside the simulator: tokens, counts and CDN expiries
  follow) and each day every account with videos posts 1-2 videos, has one older caption edited
  and, every other day, one video older than 30 days deleted (rules in `churn.py`). DayChanges
  lists the posted, edited and deleted ids per account index; the same seed and clock give the
  same changes. `now()` is the simulator's current time.
"""

from simulators.tiktok.churn import DayChanges
from simulators.tiktok.clock import ManualClock
from simulators.tiktok.config import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, SimulatorConfig
from simulators.tiktok.data import SimAccount
from simulators.tiktok.faults import FAULTS
from simulators.tiktok.simulator import TikTokSimulator, serve
from simulators.tiktok.traffic import ENDPOINTS

__all__ = [
    "DEMO_CLIENT_KEY",
    "DEMO_CLIENT_SECRET",
    "ENDPOINTS",
    "FAULTS",
    "DayChanges",
    "ManualClock",
    "SimAccount",
    "SimulatorConfig",
    "TikTokSimulator",
    "serve",
]
