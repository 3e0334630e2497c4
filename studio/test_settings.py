"""The test suite's settings: the development settings, served over plain http on localhost.

Production defaults (HTTPS redirect, secure cookies, hashed static files) follow DEBUG being
off; tests that check production behaviour set its environment in a subprocess instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "True")

from studio.settings import *  # noqa: E402, F403
