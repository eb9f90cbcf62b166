"""Test-suite settings shared by every folder.

Hypothesis explores new random examples on each local run. In CI (``CI`` set) it is
derandomized, so a landing is judged on the same examples every time; any failure a
local run finds is then fixed and kept as an explicit case.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
