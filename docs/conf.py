"""Sphinx configuration for the sipevents documentation."""

project = "sipevents"
author = "the sipevents developers"
copyright = "2026, the sipevents developers"
extensions: list[str] = []
master_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
