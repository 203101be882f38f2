"""A three-master Redis Cluster on loopback, from the embedded engine's own binary."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path

import redis as redis_sync

from liveshop.engine.embedded import engine_binary

SLOTS = 16384


def _free_pair() -> int:
    for _ in range(200):
        port = random.randint(20_000, 45_000)
        try:
            for p in (port, port + 10_000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


class LocalCluster:
    def __init__(self, directory: Path, masters: int = 3) -> None:
        self.directory = directory
        # Each node also listens on its bus port, port + 10000: pick pairs that are free.
        self.ports = [_free_pair() for _ in range(masters)]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def nodes(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> LocalCluster:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalCluster:
        for port in self.ports:
            (self.directory / str(port)).mkdir(parents=True)
            self.procs.append(self._spawn(port))
        clients = [
            redis_sync.Redis(host="127.0.0.1", port=p, socket_connect_timeout=1) for p in self.ports
        ]
        deadline = time.monotonic() + 20
        for c in clients:
            while True:
                try:
                    c.ping()
                    break
                except redis_sync.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        per = SLOTS // len(self.ports)
        for i, c in enumerate(clients):
            last = SLOTS - 1 if i == len(clients) - 1 else (i + 1) * per - 1
            c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, last)
        for c in clients[1:]:
            c.execute_command("CLUSTER", "MEET", "127.0.0.1", self.ports[0])
        while True:
            states = [c.execute_command("CLUSTER", "INFO").decode() for c in clients]
            known = [
                int(
                    c.execute_command("CLUSTER", "INFO")
                    .decode()
                    .split("cluster_known_nodes:")[1]
                    .split()[0]
                )
                for c in clients
            ]
            if all("cluster_state:ok" in s for s in states) and min(known) == len(clients):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster did not form: {states}")
            time.sleep(0.1)
        for c in clients:
            c.close()
        return self

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        d = self.directory / str(port)
        return subprocess.Popen(
            [
                engine_binary(),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(d / "nodes.conf"),
                "--dir",
                str(d),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                str(d / "log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self, index: int) -> None:
        """kill -9 one primary: it keeps its AOF and nodes.conf for restart()."""
        self.procs[index].kill()
        self.procs[index].wait()

    def restart(self, index: int) -> None:
        """Start a killed primary again on the same port, data and cluster config,
        and wait until the cluster says it is whole."""
        self.procs[index] = self._spawn(self.ports[index])
        deadline = time.monotonic() + 30
        while True:
            ok = True
            for port in self.ports:
                try:
                    with redis_sync.Redis("127.0.0.1", port, socket_connect_timeout=1) as node:
                        info = node.execute_command("CLUSTER", "INFO").decode()
                        ok = ok and "cluster_state:ok" in info
                except redis_sync.ConnectionError:
                    ok = False
            if ok:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("cluster did not recover")
            time.sleep(0.1)

    def shard_of(self, key: str) -> int:
        """Index of the primary that owns `key`'s slot (slots are split evenly)."""
        from redis.crc import key_slot

        return min(key_slot(key.encode()) // (SLOTS // len(self.ports)), len(self.ports) - 1)

    def flush(self) -> None:
        for port in self.ports:
            with redis_sync.Redis(host="127.0.0.1", port=port) as c:
                c.flushall()

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
