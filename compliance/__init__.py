"""Autobahn|Testsuite conformance of the room-socket wire (`python -m compliance`)."""
