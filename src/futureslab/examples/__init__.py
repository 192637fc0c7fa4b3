"""Runnable scripts that go with the notebooks (``python -m futureslab.examples.<name>``)."""
