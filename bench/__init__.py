"""Benchmarks: the service end to end against bare faster-whisper, on the same machine and files."""
