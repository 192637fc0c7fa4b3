"""Notebook 06's streaming pipeline as a script: download, analyse, save, and prove nothing was lost.

Run it::

    python -m futureslab.examples.pipeline_script                       # your platform's start method
    python -m futureslab.examples.pipeline_script --start-method spawn  # or fork, forkserver
    python path/to/pipeline_script.py --out results --crash 5           # keep the files; kill a worker

It starts the course's local API (unless ``FUTURESLAB_REMOTE_API`` points elsewhere), runs
:func:`futureslab.pipeline.run_streaming` over posts 1-16 and 999 (which does not exist), then checks
the account: every input ended once, saved or failed with its reason, and every saved file reads back
with the SHA-256 of what was written. Exit status 0 when all of that holds and every post that could
be downloaded was saved, 1 otherwise.

Why the last two lines (``if __name__ == "__main__":``) matter: under the *spawn* start method
(Windows, macOS) and *forkserver* (the default on Linux and other POSIX systems except macOS from
Python 3.14), a worker process starts a fresh interpreter and imports the main module to find the
functions it must run. Without the guard, that import runs the whole script again inside every
worker, which tries to start a pool of its own: ``multiprocessing`` refuses ("An attempt has been
made to start a new process before the current process has finished its bootstrapping phase"), the
worker dies, and the script sees ``BrokenProcessPool``. Under *fork* the child is a copy of the
running parent and imports nothing, so a script without the guard happens to work there: until it
runs on a Mac, on Windows, or on Linux with Python 3.14.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile

from futureslab import pipeline
from futureslab.server import LocalAPI

INPUTS = list(range(1, 17)) + [999]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start-method", choices=multiprocessing.get_all_start_methods(),
                        help="how worker processes start (default: this platform's)")
    parser.add_argument("--out", help="folder to keep the result files in (default: a temporary one)")
    parser.add_argument("--crash", type=int, metavar="POST",
                        help="the worker analysing this post dies once, to show the recovery")
    args = parser.parse_args(argv)
    if args.out is not None and not os.path.isdir(args.out):
        parser.error(f"--out must be an existing folder, got {args.out!r}")
    # Inside main(), so it runs once, in the parent: a worker importing this module never gets here.
    context = multiprocessing.get_context(args.start_method)
    print(f"start method: {context.get_start_method()}")
    with LocalAPI(latency=0.05, jitter=0.1, failure_rate=0.15), \
            tempfile.TemporaryDirectory(prefix="futureslab-script-") as scratch:
        saver = pipeline.Saver(args.out or scratch, durable=True)
        analyse = pipeline.analyse
        if args.crash is not None:
            analyse = pipeline.Crash(args.crash, os.path.join(scratch, "crashed"))
        run = pipeline.run_streaming(INPUTS, saver, analyse=analyse, mp_context=context)
        count = pipeline.tally(INPUTS, run.ledger)
        report = saver.verify(run.ledger)
    print(f"saved {count['saved']}, failed {count['failed']}, missing {count['missing']}, "
          f"ended twice {count['duplicates']}; process pools replaced: {run.restarts}")
    for item, (status, detail) in sorted(run.outcomes.items()):
        if status == "failed":
            print(f"  post {item} failed: {detail}")
    print(f"files read back: {report['good']} of {report['checked']} match what was written; "
          f"missing {len(report['missing'])}, unexpected {len(report['unexpected'])}, "
          f"temporary {len(report['temporary'])}")
    nothing_lost = (count["missing"] == count["unexpected"] == count["duplicates"] == 0
                    and count["saved"] + count["failed"] == len(INPUTS)
                    and report["good"] == report["checked"] == count["saved"]
                    and not (report["bad"] or report["missing"] or report["unexpected"] or report["temporary"]))
    unfinished = sorted(item for item, (status, detail) in run.outcomes.items()
                        if status == "failed" and not detail.startswith("download:"))
    print("nothing lost" if nothing_lost else "SOMETHING WAS LOST: see above")
    if unfinished:
        print(f"not finished: {len(unfinished)} downloaded posts were not saved (their work is kept in run.kept)")
    return 0 if nothing_lost and not unfinished else 1


if __name__ == "__main__":
    sys.exit(main())
