"""The course map: each notebook, what it teaches, and about how long it takes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    notebook: str
    title: str
    teaches: str
    minutes: int


COURSE = [
    Lesson("00-start-here.ipynb", "Start here", "how the course works, an environment check, a first taste of a thread pool", 15),
    Lesson("01-threads-vs-processes.ipynb", "Threads vs processes", "the GIL in one picture, I/O vs CPU work, pickling, start-up costs", 60),
    Lesson("02-futures.ipynb", "Futures", "submit, the states of a Future, results, exceptions, timeouts, cancel, wait", 65),
    Lesson("03-callbacks.ipynb", "Callbacks", "add_done_callback, which thread runs it, progress bars, safe aggregation", 65),
    Lesson("04-map-vs-as-completed.ipynb", "map vs as_completed", "order, time to first result, chunksize, bounded in-flight work", 70),
    Lesson("05a-pitfalls-processes.ipynb", "Pitfalls with processes", "pickling and the worker's real error, tasks too small, more processes than cores, big data, broken pools", 45),
    Lesson("05b-pitfalls-threads-and-errors.ipynb", "Pitfalls with threads, stopping and errors", "how many threads a pool starts, deadlock, races, lost errors, stopping early, one HTTP session", 60),
    Lesson("06-real-world-pipeline.ipynb", "A real-world pipeline", "download, process, save: staged vs streaming, retries, nothing lost", 70),
    Lesson("07-tuning-and-scaling.ipynb", "Tuning and scaling", "speed-up curves, Amdahl's law, choosing max_workers by measuring", 50),
    Lesson("08-asyncio-and-executors.ipynb", "asyncio and executors", "run_in_executor, to_thread, wrap_future, threads vs asyncio", 60),
    Lesson("09-newer-pythons-and-clusters.ipynb", "Newer Pythons and clusters", "what changed up to 3.15, free-threading, Dask: what is the same and what differs", 60),
]


def course_map_markdown() -> str:
    """The course map as a Markdown table (the start notebook shows it)."""
    rows = ["| # | notebook | what it teaches | minutes |", "|---|---|---|---|"]
    for lesson in COURSE:
        rows.append(f"| {lesson.notebook.split('-')[0]} | [{lesson.title}]({lesson.notebook}) | {lesson.teaches} | {lesson.minutes} |")
    return "\n".join(rows)
