"""liveshop: a real-time live-commerce server, one live room per store."""

__version__ = "0.1.0"
