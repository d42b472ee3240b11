"""Shared test set-up: hypothesis profiles.

``MERCATO_HYPOTHESIS_PROFILE=long`` runs the property tests with a much bigger budget;
the default keeps the whole property suite under a minute.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("mercato", deadline=None, print_blob=True)
settings.register_profile("long", parent=settings.get_profile("mercato"), max_examples=2000)
settings.load_profile(os.environ.get("MERCATO_HYPOTHESIS_PROFILE", "mercato"))
