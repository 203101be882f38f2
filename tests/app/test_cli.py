"""`liveshop serve` as operators run it: both ports announced, and SIGTERM stops it in
order (bye `server_shutdown` to room sockets on the wire port and on the HTTP port, then
HTTP, then the runtime), exiting 0 although uvicorn re-raises the signal it captured."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess

import httpx
import pytest

from liveshop.app.demo import DEMO_ROOM
from tests.support import UNIT, Client, RunningServer, ServerProcess, token

pytestmark = pytest.mark.slow


async def test_sigterm_says_bye_on_both_ports_and_exits_cleanly(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", demo=True).start()
    try:
        banner = server.log.read_text()
        assert f"ws://127.0.0.1:{server.wire_port}/ws/rooms/<room>" in banner
        assert f"ws://127.0.0.1:{server.port}/ws/rooms/<room>" in banner
        on_wire = await Client.connect(server.ws_url(DEMO_ROOM))
        on_http = await Client.connect(server.http_ws_url(DEMO_ROOM))
        for c in (on_wire, on_http):
            assert (await c.hello(token(user="u1")))["type"] == "welcome"
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        for c in (on_wire, on_http):
            bye = await c.wait_for(lambda m: m["type"] == "bye", 10)
            assert bye["reason"] == "server_shutdown"
            await asyncio.wait_for(c.closed.wait(), 10 * UNIT)
        code = await asyncio.to_thread(server.proc.wait, 30 * UNIT)
        assert code == 0, server.log.read_text()[-2000:]
    finally:
        server.stop()


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> CompletedProcess[str]:
    """`liveshop ...` as a user types it, with only the given LIVESHOP_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVESHOP_")}
    liveshop = Path(sys.executable).with_name("liveshop")
    return subprocess.run(
        [str(liveshop), *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_check_config_fails_without_a_secret_and_names_a_typo(tmp_path: Path) -> None:
    done = run_cli("check-config", "--data-dir", str(tmp_path), env={"LIVESHOP_PROT": "9000"})
    assert done.returncode == 1
    assert "LIVESHOP_SECRET is missing" in done.stdout
    assert "LIVESHOP_PROT is not a liveshop setting; did you mean LIVESHOP_PORT?" in done.stdout
    ok = run_cli("check-config", "--data-dir", str(tmp_path), env={"LIVESHOP_SECRET": "s" * 32})
    assert ok.returncode == 0, ok.stdout


def test_a_token_that_would_be_born_expired_is_refused() -> None:
    done = run_cli("token", "--role", "viewer", "--user", "u1", "--ttl", "-5",
                   env={"LIVESHOP_SECRET": "s" * 32})  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert "--ttl: -5 s would issue a token that has already expired" in done.stderr


def test_a_busy_port_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("serve", "--demo", "--port", str(port), "--data-dir", str(tmp_path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr


def test_the_demo_keeps_its_secret_across_restarts(tmp_path: Path) -> None:
    """Yesterday's tokens still verify after a restart on the same data dir."""
    secrets = []
    for _ in range(2):
        server = ServerProcess(tmp_path / "data", demo=True, extra_env={"LIVESHOP_SECRET": ""})
        server.start()
        server.stop()
        banner = server.log.read_text()
        secrets.append(banner.rsplit("LIVESHOP_SECRET=", 1)[1].split()[0])
    assert secrets[0] == secrets[1] and len(secrets[0]) >= 32
    assert (tmp_path / "data" / "demo-secret").stat().st_mode & 0o077 == 0  # owner only


async def test_unknown_paths_and_methods_answer_json(server: RunningServer) -> None:
    async with httpx.AsyncClient() as http:
        missing = await http.get(f"{server.http}/api/nothing-here")
        wrong = await http.post(f"{server.http}/api/rooms")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "not_found", "message": "no such path /api/nothing-here"}
    }
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "bad_message"
    assert wrong.headers["allow"]  # still says what is allowed
