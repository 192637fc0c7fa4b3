"""Plumbing for the lesson cells of notebooks 03 and 04: what a learner need not read to follow them.

The lessons show the concurrency; the helpers here capture a logger, re-measure a timing-sensitive
demo, and draw the "received" row of a timeline.
"""

from __future__ import annotations

import contextlib
import logging

from ._validate import check_callable, check_int

__all__ = ["callback_errors", "mark_received"]


@contextlib.contextmanager
def callback_errors():
    """Collect what the ``concurrent.futures`` logger reports (e.g. "exception calling callback for
    <Future ...>") into a list of ``logging.LogRecord``, instead of printing it::

        with callback_errors() as caught:
            ...
        [record.exc_info[0].__name__ for record in caught]
    """
    caught: list[logging.LogRecord] = []

    class _Collect(logging.Handler):
        def emit(self, record):
            caught.append(record)

    handler = _Collect(logging.DEBUG)
    logger = logging.getLogger("concurrent.futures")
    logger.addHandler(handler)
    old_propagate, logger.propagate = logger.propagate, False
    try:
        yield caught
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate


def mark_received(ax, tracer, received, burst: float = 0.01):
    """Add a "received" row under a :class:`~futureslab.trace.Tracer` timeline: a marker where the
    main thread got each result, labelled with its item (results within ``burst`` s share a label)."""
    from .trace import _worker_order

    workers = sorted(tracer.workers, key=_worker_order)  # the rows plot_timeline drew, in its order
    row = len(workers)
    ax.scatter([t for _, t in received], [row] * len(received), marker="v", color="black", zorder=3)
    bursts: list = []
    for item, t in received:
        if bursts and t - bursts[-1][1] < burst:
            bursts[-1][0].append(str(item))
        else:
            bursts.append(([str(item)], t))
    for k, (labels, t) in enumerate(bursts):
        ax.annotate(",".join(labels), (t, row), textcoords="offset points",
                    xytext=(0, 6 if k % 2 else -12), ha="center", fontsize=9)
    ax.set_yticks(range(row + 1), workers + ["received"])
    ax.set_ylim(row + 0.7, -0.6)
    return ax
