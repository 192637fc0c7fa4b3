"""Futures Lab: the helper package beside the course notebooks.

Modules (import the one you need; this package imports nothing heavy, so worker processes start fast):

* :mod:`futureslab.tasks`   - the work the lessons run (module-level, picklable under every start method)
* :mod:`futureslab.server`  - ``LocalAPI``, an embedded JSON API on 127.0.0.1
* :mod:`futureslab.timing`  - repeat, best, median, speed-ups, one print format
* :mod:`futureslab.trace`   - which worker ran which task when, and the timeline picture
* :mod:`futureslab.plots`   - runtime bars, speed-up curves
* :mod:`futureslab.claims`  - a lesson's claim checked on the machine that runs it
* :mod:`futureslab.checks`  - exercise checkers
* :mod:`futureslab.doctor`  - ``python -m futureslab.doctor``: is this machine ready for the course?
"""

__version__ = "0.1.0"


def setup(start_method: str | None = None) -> str:
    """The first line of every notebook's set-up cell. Returns the start method in force.

    * Applies a multiprocessing start method: ``start_method`` if given, else the environment
      variable ``FUTURESLAB_START_METHOD`` (the test suite uses it to run every notebook under fork,
      spawn and forkserver), else your platform's default.
    * Keeps figures small and crisp (it sets matplotlib's figure dpi if matplotlib is imported).
    """
    import multiprocessing
    import os
    import sys

    method = start_method or os.environ.get("FUTURESLAB_START_METHOD") or None
    if method is not None:
        available = multiprocessing.get_all_start_methods()
        if method not in available:
            raise ValueError(f"start_method must be one of {available} on this platform, got {method!r}")
        multiprocessing.set_start_method(method, force=True)
    if "matplotlib" in sys.modules:
        import matplotlib

        matplotlib.rcParams.update({"figure.dpi": 72, "savefig.dpi": 72, "figure.max_open_warning": 0})
    return multiprocessing.get_start_method()
