"""Stands in for the hiredis package when this directory comes first on ``sys.path``:
its import fails, so redis-py uses its pure-Python reply parser."""

raise ImportError("hiredis is hidden here so that redis-py parses replies in Python")
