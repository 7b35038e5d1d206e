"""Checks the project runs on itself (``python -m registry._devtools.imports``); not part of the API."""
