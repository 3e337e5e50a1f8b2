"""
Tests for L{sipevents}, run with C{python -m twisted.trial tests}.
"""
