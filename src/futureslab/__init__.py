"""Futures Lab: the helper package beside the course notebooks.

Modules (import the one you need; this package imports nothing heavy, so worker processes start fast):

* :mod:`futureslab.tasks`   - the work the lessons run (module-level, picklable under every start method)
* :mod:`futureslab.server`  - ``LocalAPI``, an embedded JSON API on 127.0.0.1
* :mod:`futureslab.timing`  - repeat, best, median, speed-ups, one print format
* :mod:`futureslab.trace`   - which worker ran which task when, and the timeline picture
* :mod:`futureslab.plots`   - runtime bars, speed-up curves
* :mod:`futureslab.cores`   - the yardstick: cores the OS grants, CPU other programs use
* :mod:`futureslab.claims`  - a lesson's claim checked on the machine that runs it (three outcomes)
* :mod:`futureslab.lesson01`, :mod:`~futureslab.lessons` (03, 04), :mod:`~futureslab.pitfalls` (05a/b),
  :mod:`~futureslab.pipeline` (06), :mod:`~futureslab.lesson07`, :mod:`~futureslab.lesson09` - the
  measuring and demo plumbing of those notebooks
* :mod:`futureslab.checks`  - exercise checkers
* :mod:`futureslab.doctor`  - ``python -m futureslab.doctor``: is this machine ready for the course?
* :mod:`futureslab.stdlib_fixes` - CPython's gh-125451 (a process pool given a lambda can deadlock as
  it shuts down: 3.12.1, 3.13.0), read from this Python's code and fixed in-process by ``setup()``
"""

__version__ = "0.1.0"

from ._config import SettingError  # noqa: E402  (light: the settings module imports nothing heavy)


def setup(start_method: str | None = None) -> str:
    """The first line of every notebook's set-up cell. Returns the start method in force.

    * Checks the course's settings (``FUTURESLAB_START_METHOD``, ``FUTURESLAB_REMOTE_API``, ...) and
      raises one ``futureslab.SettingError`` naming each bad variable, its value and the fix, so a
      misconfiguration stops the set-up cell instead of failing later cells in confusing ways.
    * Applies a multiprocessing start method: ``start_method`` if given, else the environment
      variable ``FUTURESLAB_START_METHOD`` (the test suite uses it to run every notebook under fork,
      spawn and forkserver), else your platform's default.
    * Where this Python's ``ProcessPoolExecutor`` has CPython bug gh-125451 (a pool that cannot
      pickle a task can deadlock as it shuts down: 3.12 before its fix, 3.13.0), fixes it in this
      process; see :mod:`futureslab.stdlib_fixes`.
    * Makes figures readable and crisp (if matplotlib is imported): no text under 10 pt, and in
      Jupyter each figure drawn at twice its pixel density (the inline backend's "retina" PNG),
      so a HiDPI screen shows it sharp; see :func:`futureslab.plots.style`.
    """
    import multiprocessing
    import os
    import sys

    from ._config import ENV_START_METHOD, check_settings, lesson_settings

    if start_method is not None:
        available = multiprocessing.get_all_start_methods()
        if start_method not in available:
            raise ValueError(f"start_method must be one of {available} on this platform, got {start_method!r}")
    check_settings(lesson_settings())  # raises SettingError, one message for every bad setting
    method = start_method or os.environ.get(ENV_START_METHOD) or None
    if method is not None:
        multiprocessing.set_start_method(method, force=True)
    from .stdlib_fixes import fix_gh125451

    fix_gh125451()
    if "matplotlib" in sys.modules:
        from .plots import style

        style()
    __import__("futureslab.interrupts").interrupts.install()  # in a kernel: one-line interrupts, clean shutdown
    return multiprocessing.get_start_method()
