"""Source shared by the tests' cluster scripts (each runs as its own process, so it is pasted in)."""

#: Defines ``stop_first_worker()``: from then on, the first Dask worker process this script starts is
#: stopped (SIGSTOP) as soon as it exists, a worker stuck as it starts. Returns the list its pid goes
#: to. Imports Dask's ``AsyncProcess``: if Dask moved it, the script fails rather than pass blind.
STOP_FIRST_WORKER = '''
def stop_first_worker():
    import functools, os, signal
    from distributed.process import AsyncProcess
    original, stopped = AsyncProcess.start, []
    @functools.wraps(original)
    async def start(self):
        started = await original(self)
        if not stopped:
            stopped.append(self.pid)
            os.kill(self.pid, signal.SIGSTOP)
        return started
    AsyncProcess.start = start
    return stopped
'''
