"""Interrupting a cell, and shutting a kernel down, without noise or leftovers.

:func:`install` is called by :func:`futureslab.setup`. Outside an IPython kernel it does nothing.
In a kernel it changes three things, each narrowly, and each can be undone with :func:`uninstall`:

1. **An interrupted cell says so in one line.** The stop button raises ``KeyboardInterrupt`` in the
   kernel's main thread, wherever it happens to be waiting: often deep inside
   ``concurrent.futures`` (``Future.result``, ``shutdown``, ``Thread.join``), so IPython prints a
   traceback of a dozen frames the learner did not write. An IPython custom exception handler
   (``InteractiveShell.set_custom_exc``) shows instead one line naming the cell line that was
   running. The cell still ends in error (IPython's ``run_code`` records the exception, so ipykernel
   replies ``status: error`` with ``ename: KeyboardInterrupt``): "Run all" stops there, as before.
   Other exceptions are untouched. If something else already installed a custom handler, this one
   is not installed.

   A cell that is waiting in a top-level ``await`` is stopped differently: ipykernel (6+) does not
   raise ``KeyboardInterrupt`` there but cancels the cell's coroutine (``IPythonKernel.
   _cancel_on_sigint``), so the cell ends in ``asyncio.CancelledError``. A ``pre_run_cell`` hook
   wraps the SIGINT handler ipykernel installs for such a cell, only to note that the signal came;
   a ``CancelledError`` that ends a cell after that is shown as one line too (still named
   ``CancelledError``, saying why). A ``CancelledError`` with no interrupt behind it (the learner's
   own ``task.cancel()``) keeps IPython's usual traceback.

2. **Python 3.10 and 3.11 only: a broken process pool finishes shutting down.** When a worker
   process dies (an idle worker exits on the interrupt's ``SIGINT``, which Jupyter sends to the
   kernel's whole process group) the pool's manager thread runs ``terminate_broken``, which marks
   every pending future failed. On 3.10/3.11 it calls ``set_exception`` on futures the interrupted
   ``map`` had just cancelled, which raises ``InvalidStateError: CANCELLED``: the thread dies with a
   traceback, *before* terminating and joining the remaining workers. CPython fixed this in 3.12
   (gh-107219: the error is ignored). A ``threading.excepthook`` recognises exactly that error in
   exactly that thread and method, and does the rest of ``terminate_broken`` as 3.12 does (fail the
   futures not yet done, terminate the workers, join the pool's internals); any other exception
   goes to the previous hook unchanged.

3. **A kernel that used spawn or forkserver shuts down instead of being killed.** Those start
   methods start multiprocessing's *resource tracker*, a child process that ignores ``SIGTERM`` by
   design and exits when the last process holding its pipe closes it. On a shutdown request
   ipykernel signals its children with ``SIGTERM`` for about 4.4 s before it tries ``SIGKILL``, but
   jupyter_client (JupyterLab, nbclient, nbval) waits only half its ``shutdown_wait_time`` (5 s by
   default) and then kills the kernel. Killed, the kernel runs no ``atexit`` code, so
   multiprocessing never removes its ``pymp-*`` folder from the temp dir (created by
   ``multiprocessing.util.get_temp_dir``, e.g. for the forkserver's socket, and removed by a
   ``Finalize`` at exit). An observer of the shell's ``exit_now`` trait (set by the kernel's
   ``do_shutdown``, just before ipykernel signals its children) stops the forkserver and closes this
   process's end of the resource tracker's pipe, so the tracker exits as soon as the workers do;
   ipykernel finds no children left, the kernel exits normally and multiprocessing cleans up after
   itself.

4. **(Not installed: used by the helpers.)** :func:`stopping_workers` wraps a block that uses a
process pool: if the block ends in an exception (an interrupt included), the pool's worker
processes are terminated *before* the pool's ``shutdown(wait=True)`` waits for them. Without it an
interrupt can leave a cell stuck for good: SIGINT reaches every worker, an idle worker can die
holding the lock of the pool's call queue (it was receiving its next task), and a worker that
survived (the one computing, whose task's ``KeyboardInterrupt`` went back as its result) then waits
for that lock forever, while the shutdown joins it forever (seen about once in six interrupts of
notebook 07 under spawn). A learner's own ``with ProcessPoolExecutor()`` block can meet the same
fate; the instructor guide says what frees it.

What this module does **not** hide: a worker process that was *idle* when the interrupt arrived
(waiting for its next task) dies of the ``KeyboardInterrupt`` and prints ``Process
ForkProcess-N:`` and a traceback on its own standard error (``multiprocessing.process.BaseProcess.
_bootstrap`` prints any exception that ends a process), which the kernel shows under the cell. That
is the worker's own output; the notebooks say what it means.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

MESSAGE = ("KeyboardInterrupt: you interrupted this cell{where}. It did not finish, so whatever "
           "it had not yet done is missing: re-run it before the cells after it.")

ASYNC_MESSAGE = ("CancelledError: you interrupted this cell{where}; Jupyter stops a cell that is waiting "
                 "in an await by cancelling it. It did not finish, so whatever it had not yet done is "
                 "missing: re-run it before the cells after it.")

_installed: dict = {}
_sigint = {"seen": False}  # set by the wrapper of ipykernel's SIGINT handler for an awaiting cell


def terminate_workers(pool, wait: float = 10.0) -> None:
    """Terminate a process pool's worker processes now; any other executor is left alone.

    ``terminate_workers()`` on Python 3.14+ (it also shuts the pool down without waiting); before
    3.14 the pool's own process table (a private attribute: the standard library had no public way).
    Then, for at most ``wait`` seconds, wait for the pool's manager thread, which reaps the terminated
    workers and ends: on 3.14+ the pool's ``shutdown(wait=True)`` no longer waits for it once
    ``terminate_workers()`` has shut the pool down, so without this the workers could still be
    exiting (and the thread running) after the ``with`` block that used the pool.
    """
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait < 0:
        raise ValueError(f"wait must be a number of seconds >= 0, got {wait!r}")
    manager = getattr(pool, "_executor_manager_thread", None)
    if hasattr(pool, "terminate_workers"):
        pool.terminate_workers()
    else:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            try:
                process.terminate()
            except (OSError, ValueError):  # already gone, or already closed
                pass
    if isinstance(manager, threading.Thread) and manager is not threading.current_thread():
        if hasattr(pool, "terminate_workers"):  # before 3.14 the caller's shutdown(wait=True) joins it
            manager.join(wait)


@contextmanager
def stopping_workers(pool):
    """``with pool(n) as ex, stopping_workers(ex):``: if the block raises (an interrupt included), the
    worker processes are terminated before the pool's shutdown waits for them (see point 4 above)."""
    try:
        yield pool
    except BaseException:
        terminate_workers(pool)
        raise


class _Held:
    """What :func:`interrupt_held` saw: call it for whether an interrupt arrived in the block."""

    def __init__(self):
        self.seen = False
        self.blocking = False  # SIGINT is blocked: one sent meanwhile may wait, pending

    def __call__(self) -> bool:
        if not self.seen and self.blocking:
            import signal

            return signal.SIGINT in signal.sigpending()
        return self.seen


@contextmanager
def interrupt_held():
    """Hold an interrupt (``SIGINT``) that arrives inside the block until the block has ended, then
    raise ``KeyboardInterrupt``: for a start-up that cannot be closed half-way. ``with
    interrupt_held() as interrupted:`` - ``interrupted()`` says whether one came, so the block can
    close what it started before the interrupt is raised. If the block raised too, the interrupt
    wins (``raise KeyboardInterrupt from`` the block's error). Outside the main thread, or where
    there is no ``SIGINT``, it holds nothing.

    Where the OS has ``pthread_sigmask`` (not Windows), ``SIGINT`` is also blocked in this thread
    for the block's duration, so the threads and child processes started in it inherit a blocked
    ``SIGINT`` (and keep it): Jupyter signals the kernel's whole process group, and a worker
    process started here would otherwise die of the interrupt half-started.

    Measured with Dask's ``LocalCluster`` (a script in its own process group, interrupted with
    ``killpg`` 0.3 and 0.9 s in, as Jupyter does): interrupted inside its constructor, the half-
    started scheduler kept two ports and two threads, and ``close()`` raised ``AssertionError`` (a
    nanny still "starting") or hung (3.10, 3.11, 3.14). With the handler alone, the workers died of
    the signal and 3.14's cluster stuck in "closing"; with the mask too, the cluster finished
    starting in about 1.2 s and closed cleanly in 0.25 s, leaving nothing (3.10, 3.14)."""
    import signal

    held = _Held()
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGINT"):
        yield held
        return

    def note(signum, frame):
        held.seen = True

    # Blocked in this thread, SIGINT also stays blocked in every thread and child process started
    # from here meanwhile (a signal mask is inherited by new threads, across fork and across exec):
    # Dask's event-loop thread and the worker processes it spawns, which would otherwise die of
    # the interrupt half-started (Jupyter signals the kernel's whole process group). Where no other
    # thread may take it, the signal waits, pending, and is consumed below.
    block = hasattr(signal, "pthread_sigmask")
    previous = signal.signal(signal.SIGINT, note)
    if block:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        held.blocking = True

    def restore():
        if block:
            if signal.SIGINT in signal.sigpending():
                signal.sigwait({signal.SIGINT})  # take it while still blocked: it is this block's
                held.seen = True
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
            held.blocking = False
        signal.signal(signal.SIGINT, previous)

    try:
        yield held
    except BaseException as exc:
        restore()
        if held.seen and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt() from exc
        raise
    restore()
    if held.seen:
        raise KeyboardInterrupt()


def _cell_line(tb) -> int | None:
    """The line of the cell that was running: the first ``<module>`` frame of the traceback."""
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "<module>":
            return tb.tb_lineno
        tb = tb.tb_next
    return None


def one_line(exc: BaseException) -> str:
    """The line shown for an interrupted cell."""
    line = _cell_line(exc.__traceback__)
    return MESSAGE.format(where=f" at line {line}" if line else "")


def _on_interrupt(shell, etype, value, tb, tb_offset=None):
    """IPython custom exception handler: one line for an interrupted cell instead of a traceback."""
    import asyncio

    if issubclass(etype, asyncio.CancelledError) and not _sigint["seen"]:
        # not an interrupt: the learner's own cancellation keeps IPython's full traceback
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return None
    line = _cell_line(tb)
    template = MESSAGE if issubclass(etype, KeyboardInterrupt) else ASYNC_MESSAGE
    stb = [template.format(where=f" at line {line}" if line else "")]
    shell._showtraceback(etype, value, stb)  # IPython's hook to display a traceback (an error output)
    return stb


def _note_sigint(*args, **kwargs) -> None:
    """``pre_run_cell`` hook: for an awaiting cell, note when ipykernel's SIGINT handler is called.

    ipykernel installs its handler (which cancels the cell) before the cell starts and puts the
    previous one back when the cell ends, so the wrapper lives exactly as long as that cell. A cell
    that does not await keeps Python's default handler (it raises KeyboardInterrupt): not wrapped.
    """
    import signal

    _sigint["seen"] = False
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread (ipykernel's subshells do not cancel)
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler) or handler is signal.default_int_handler or getattr(handler, "_futureslab", False):
        return

    def noting(signum, frame, _kernels=handler):
        _sigint["seen"] = True
        return _kernels(signum, frame)

    noting._futureslab = True
    signal.signal(signal.SIGINT, noting)


def _raised_in(tb, function: str) -> bool:
    while tb is not None:
        if tb.tb_frame.f_code.co_name == function:
            return True
        tb = tb.tb_next
    return False


def _is_terminate_broken_bug(args) -> bool:
    """The 3.10/3.11 error of gh-107219: InvalidStateError in the pool manager's terminate_broken."""
    if sys.version_info >= (3, 12) or args.exc_type is None:
        return False
    from concurrent.futures import InvalidStateError
    from concurrent.futures.process import _ExecutorManagerThread

    return (issubclass(args.exc_type, InvalidStateError)
            and isinstance(args.thread, _ExecutorManagerThread)
            and _raised_in(args.exc_traceback, "terminate_broken"))


def _finish_terminate_broken(thread) -> None:
    """The rest of ``terminate_broken`` as Python 3.12 runs it, skipping futures already done."""
    from concurrent.futures.process import BrokenProcessPool

    for work_item in list(thread.pending_work_items.values()):
        if not work_item.future.done():
            try:
                work_item.future.set_exception(BrokenProcessPool(
                    "A process in the process pool was terminated abruptly while the future was "
                    "running or pending."))
            except Exception:  # cancelled meanwhile: nothing to report to anyone
                pass
    thread.pending_work_items.clear()
    for process in list(thread.processes.values()):
        process.terminate()
    thread.join_executor_internals()


def _excepthook(args) -> None:
    if _is_terminate_broken_bug(args):
        _finish_terminate_broken(args.thread)
        return
    _installed.get("previous_excepthook", threading.__excepthook__)(args)


def _release_multiprocessing_helpers(change=None) -> None:
    """At kernel shutdown: stop the forkserver, and let the resource tracker exit with the workers."""
    if change is not None and not change.get("new"):
        return
    import os
    from multiprocessing import forkserver, resource_tracker

    tracker = getattr(resource_tracker, "_resource_tracker", None)
    tracker_pid = None
    if tracker is not None:
        with tracker._lock:
            fd, tracker_pid = tracker._fd, tracker._pid
            # a later use starts a fresh tracker; 3.13+'s ResourceTracker.__del__ has nothing to stop
            tracker._fd = tracker._pid = None
        if fd is not None:
            try:
                os.close(fd)  # the tracker sees EOF once the workers (signalled by ipykernel) are gone
            except OSError:
                pass
    server = getattr(forkserver, "_forkserver", None)

    def finish():  # in the background: each wait ends only when ipykernel's signals have done their part
        if server is not None and getattr(server, "_forkserver_pid", None) is not None:
            try:
                server._stop()  # closes its "alive" pipe, reaps it, removes its socket file
            except Exception:
                pass
        if tracker_pid is not None:
            try:
                os.waitpid(tracker_pid, 0)  # else it lingers as a zombie that ipykernel keeps signalling
            except OSError:
                pass

    threading.Thread(target=finish, name="futureslab-kernel-shutdown", daemon=True).start()


def install() -> bool:
    """Install the three behaviours above in the running IPython kernel; False if not in one."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    if "shell" in _installed:
        return True
    if not shell.custom_exceptions:
        import asyncio

        shell.set_custom_exc((KeyboardInterrupt, asyncio.CancelledError), _on_interrupt)
        shell.events.register("pre_run_cell", _note_sigint)
        _installed["custom_exc"] = True
    if sys.version_info < (3, 12):
        _installed["previous_excepthook"] = threading.excepthook
        threading.excepthook = _excepthook
    if sys.platform != "win32":
        shell.observe(_release_multiprocessing_helpers, names="exit_now")
        _installed["observer"] = True
    _installed["shell"] = shell
    return True


def uninstall() -> None:
    """Undo :func:`install`."""
    shell = _installed.pop("shell", None)
    if shell is None:
        return
    if _installed.pop("custom_exc", False):
        import asyncio

        if shell.custom_exceptions == (KeyboardInterrupt, asyncio.CancelledError):
            shell.set_custom_exc((), None)
        try:
            shell.events.unregister("pre_run_cell", _note_sigint)
        except ValueError:
            pass
    if "previous_excepthook" in _installed and threading.excepthook is _excepthook:
        threading.excepthook = _installed.pop("previous_excepthook")
    if _installed.pop("observer", False):
        shell.unobserve(_release_multiprocessing_helpers, names="exit_now")
