"""
Setuptools shim: the metadata lives in C{setup.cfg}.

The Twisted dropin C{twisted/plugins/sipevents_plugin.py} lives in a folder with
no C{__init__.py} (it must not shadow the real C{twisted} package), so
C{find_packages} cannot see it: it is added to the package list by name, which
makes a plain C{pip install .} install it, not only an editable install.
"""

from __future__ import annotations

from setuptools import find_packages, setup

setup(
    packages=find_packages(exclude=["tests", "tests.*", "bench", "docs"])
    + ["twisted.plugins"],
)
