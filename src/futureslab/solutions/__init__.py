"""Worked solutions to the exercises, one module per notebook (``nb01``, ``nb02``, ...).

Kept apart from the notebooks so you can try first. In a notebook, ``checks.solution("01.1")`` prints
one. They live in an importable module so that solutions using a process pool work under every start
method.
"""
