"""Bus modules and API definitions the benchmarks run (in-process and as
``lightbus-sync run --bus benchmarks.apps.<module>`` subprocesses)."""
