"""Test harness: a running simulator, an httpx client on it, and the calls a real client makes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from simulators.tiktok import DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET, ManualClock, TikTokSimulator

REDIRECT_URI = "http://127.0.0.1:8765/callback"
ALL_SCOPES = "user.info.basic,user.info.profile,user.info.stats,video.list"
USER_FIELDS = (
    "open_id,union_id,avatar_url,avatar_url_100,avatar_large_url,display_name,bio_description,"
    "profile_deep_link,is_verified,username,follower_count,following_count,likes_count,video_count"
)
VIDEO_FIELDS = (
    "id,create_time,cover_image_url,share_url,video_description,duration,height,width,title,"
    "embed_html,embed_link,like_count,comment_count,share_count,view_count,is_aigc"
)


def callback_params(response: httpx.Response) -> dict[str, str]:
    """The query of the 302 Location, URL-decoded, as the app's callback handler would see it."""
    assert response.status_code == 302, response.text
    query = urlsplit(response.headers["location"]).query
    return {key: values[0] for key, values in parse_qs(query).items()}


@dataclass
class Harness:
    sim: TikTokSimulator
    client: httpx.Client
    clock: ManualClock

    def authorize_page(self, **params: str) -> httpx.Response:
        query = {
            "client_key": DEMO_CLIENT_KEY,
            "scope": ALL_SCOPES,
            "redirect_uri": REDIRECT_URI,
            "state": "csrf-123",
            "response_type": "code",
            **params,
        }
        return self.client.get("/v2/auth/authorize/", params=query)

    def token(self, **form: str) -> httpx.Response:
        body = {"client_key": DEMO_CLIENT_KEY, "client_secret": DEMO_CLIENT_SECRET, **form}
        return self.client.post("/v2/oauth/token/", data=body)

    def exchange(self, code: str, redirect_uri: str = REDIRECT_URI, **form: str) -> httpx.Response:
        return self.token(
            grant_type="authorization_code", code=code, redirect_uri=redirect_uri, **form
        )

    def refresh(self, refresh_token: str) -> httpx.Response:
        return self.token(grant_type="refresh_token", refresh_token=refresh_token)

    def login(self, account: int | str = 0, scopes: str = ALL_SCOPES) -> dict[str, object]:
        """Shortcut consent plus a real token exchange; returns the token response."""
        code = self.sim.authorize(account, scopes, REDIRECT_URI)
        response = self.exchange(code)
        assert response.status_code == 200, response.text
        return response.json()

    def access_token(self, account: int | str = 0, scopes: str = ALL_SCOPES) -> str:
        return str(self.login(account, scopes)["access_token"])

    def user_info(self, token: str, fields: str | None = USER_FIELDS) -> httpx.Response:
        params = {} if fields is None else {"fields": fields}
        return self.client.get("/v2/user/info/", params=params, headers=bearer(token))

    def video_list(
        self,
        token: str,
        body: Mapping[str, object] | None = None,
        fields: str | None = VIDEO_FIELDS,
    ) -> httpx.Response:
        params = {} if fields is None else {"fields": fields}
        return self.client.post(
            "/v2/video/list/", params=params, json=dict(body or {}), headers=bearer(token)
        )

    def video_query(
        self, token: str, video_ids: list[str], fields: str | None = VIDEO_FIELDS
    ) -> httpx.Response:
        params = {} if fields is None else {"fields": fields}
        body = {"filters": {"video_ids": video_ids}}
        return self.client.post("/v2/video/query/", params=params, json=body, headers=bearer(token))

    def walk(self, token: str, max_count: int = 20) -> list[dict[str, object]]:
        """Every video via cursor pagination, with a hard stop like the real client's."""
        videos: list[dict[str, object]] = []
        body: dict[str, object] = {"max_count": max_count}
        for _ in range(10_000):
            data = self.video_list(token, body).json()["data"]
            videos.extend(data["videos"])
            if not data["has_more"]:
                return videos
            body = {"max_count": max_count, "cursor": data["cursor"]}
        raise AssertionError("pagination did not stop")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
