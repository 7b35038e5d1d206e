"""``python -m registry.cli``: the same as the ``registry`` console script."""
from __future__ import annotations

from .group import main

main()
