"""TikTok apps (client key and secret) resolved from the environment at run time.

Each connection is bound to one app, so sandbox and live credentials can be used side by side.
App `default` reads TIKTOK_CLIENT_KEY / TIKTOK_CLIENT_SECRET; any other app NAME reads
TIKTOK_<NAME>_CLIENT_KEY / TIKTOK_<NAME>_CLIENT_SECRET. App `demo` is the built-in simulator's
public demo app and is usable only in demo mode.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_APP = "default"
DEMO_APP = "demo"
# The built-in simulator's public demo app (simulators/tiktok/config.py registers the same pair;
# a test keeps them equal). Public on purpose: it opens only the simulator, only in demo mode.
DEMO_CLIENT_KEY = "sbawdemo00000000tiktokcrmsync"
DEMO_CLIENT_SECRET = "demo-secret-not-a-real-tiktok-secret"
_APP_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


class MissingSecret(RuntimeError):
    """A secret the run needs is not in the environment."""


@dataclass(frozen=True)
class TikTokApp:
    name: str
    client_key: str
    client_secret: str = field(repr=False)


def app_env_names(name: str) -> tuple[str, str]:
    """The environment variables holding an app's client key and secret."""
    if not _APP_NAME.fullmatch(name):
        raise ValueError(f"invalid app name {name!r}: use lowercase letters, digits and _")
    prefix = "TIKTOK" if name == DEFAULT_APP else f"TIKTOK_{name.upper()}"
    return f"{prefix}_CLIENT_KEY", f"{prefix}_CLIENT_SECRET"


def live_credentials_configured(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Names of TikTok credential variables that are set (demo mode refuses to run beside them)."""
    return sorted(
        key
        for key, value in environ.items()
        if value and re.fullmatch(r"TIKTOK_(?:[A-Z0-9_]+_)?CLIENT_(?:KEY|SECRET)", key)
    )


def load_app(name: str, environ: Mapping[str, str] = os.environ) -> TikTokApp:
    if name == DEMO_APP:
        return TikTokApp(DEMO_APP, DEMO_CLIENT_KEY, DEMO_CLIENT_SECRET)
    key_var, secret_var = app_env_names(name)
    missing = [var for var in (key_var, secret_var) if not environ.get(var)]
    if missing:
        raise MissingSecret(
            f"TikTok app {name!r} needs {' and '.join(missing)} in the environment "
            f"(the app's client key and secret from developers.tiktok.com); set them, "
            f"or try the pipeline without credentials with `tiktok-crm-sync demo`"
        )
    return TikTokApp(name, environ[key_var], environ[secret_var])
