"""Helpers for the browser tests of the viewer page and the broadcaster console.

Owns the real `liveshop serve --demo` subprocess used by tests/test_pages.py and the
Chromium launch rules; it knows the pages only through ids and data-* attributes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).parent / "artifacts"
# The server wants an HS256 key of at least 32 bytes.
SECRET = "testsecret-pages-0123456789abcdef0123"
ROOM = "s001"

# One time unit for every wait in the page tests; CI machines may scale it up.
UNIT_MS = int(float(os.environ.get("LIVESHOP_TEST_UNIT", "1")) * 1000)


def require_browser() -> None:
    """Missing Chromium or Playwright fails loudly in CI and skips with a reason elsewhere."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "Playwright for Python is not installed (pip install playwright)"
    if problem is None and not CHROMIUM.exists():
        problem = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run: {problem}", pytrace=False)
    pytest.skip(f"browser tests need a browser: {problem}")


def liveshop_bin() -> Path:
    """The `liveshop` console script next to this interpreter (the project's venv)."""
    override = os.environ.get("LIVESHOP_BIN")  # run the pages against another build
    return Path(override) if override else Path(sys.executable).with_name("liveshop")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveshopServer:
    """`liveshop serve --demo` as a real process; restartable on the same port and data."""

    data_dir: Path
    demo: bool = True
    port: int = field(default_factory=free_port)
    ws_port: int = field(default_factory=free_port)  # the wire's; the pages use the HTTP port
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra LIVESHOP_* settings

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> None:
        exe = liveshop_bin()
        if not exe.exists():
            pytest.fail(f"server executable missing: {exe} (pip install -e . first)", pytrace=False)
        self.log = (self.data_dir / "server.log").open("ab")
        cmd = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--ws-port", str(self.ws_port)]
        cmd += ["--data-dir", str(self.data_dir), *(["--demo"] if self.demo else [])]
        env = {**os.environ, "LIVESHOP_SECRET": SECRET, **self.env}
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail(f"server exited with {self.proc.returncode} while starting")
            if self._healthy():
                return
            time.sleep(0.05)
        self._fail(f"server not healthy after {timeout_s} s")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close_log()
                pytest.fail(f"server ignored SIGTERM for {timeout_s} s", pytrace=False)
        self.proc = None
        self._close_log()

    def _close_log(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None

    def _fail(self, why: str) -> None:
        self.stop()
        tail = (self.data_dir / "server.log").read_text(errors="replace")[-3000:]
        pytest.fail(f"{why}\n--- server log ---\n{tail}", pytrace=False)


@contextmanager
def running_server(
    data_dir: Path, *, demo: bool = True, env: dict[str, str] | None = None
) -> Iterator[LiveshopServer]:
    server = LiveshopServer(data_dir=data_dir, demo=demo, env=env or {})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class PageLog:
    """What a page complained about: console errors and uncaught exceptions."""

    name: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return [f"{self.name}: {e}" for e in self.console_errors + self.page_errors]


def open_page(
    browser: Browser,
    url: str,
    name: str,
    *,
    width: int = 375,
    height: int = 667,
    lang: str = "zh-CN",
) -> tuple[Page, PageLog]:
    """A page in its own context (own sessionStorage, so its own demo user), logging errors."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=1,
        locale=lang,
        is_mobile=width < 600,
        has_touch=width < 600,
    )
    page = context.new_page()
    page.set_default_timeout(5 * UNIT_MS)
    log = PageLog(name)
    page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))
    page.goto(url)
    return page, log


def sign_token(user: str, role: str, room: str = ROOM, ttl_s: int = 600) -> str:
    """A token as a store's own backend would mint it (HS256, the claims of PROTOCOL.md)."""
    import jwt

    claims = {"sub": user, "role": role, "room": room, "exp": int(time.time()) + ttl_s}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def number(text: str) -> float:
    """A figure as shown on a page ("¥1,234.50", "12.5%", "318") → 1234.5, 12.5, 318."""
    cleaned = "".join(ch for ch in text if ch.isdigit() or ch in ".-")
    return float(cleaned) if cleaned else 0.0
