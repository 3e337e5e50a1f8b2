"""
Benchmarks of sipevents: scripts that print figures, run from the
repository root as C{python -m bench.NAME} (see C{bench/README.md}).

Nothing here is a test: a benchmark asserts no threshold, but exits
non-zero when its measurement is not valid. Every script sends to
127.0.0.1 only, is bounded in time and in count, and takes C{--quick} for
its smallest settings (a few seconds). What they share (starting and
stopping a server, running SIPp, reading CPU time from C{/proc}, the
common options) is in L{bench.harness}.

The package is not installed with sipevents: it measures a checkout.
"""
