"""A private PostgreSQL that serves TLS with a certificate from a CA made for the test.

The shared PostgreSQL on 127.0.0.1:5432 has no TLS, so the production settings' sslmode
verify-full is exercised against this one: its own data directory under a temporary folder,
on a free loopback port, stopped when the test ends. Certificates come from `openssl`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from service_processes import free_port
from throwaway_servers import pg_binary


@dataclass(frozen=True)
class TlsPostgres:
    url: str
    ca_file: Path
    other_ca_file: Path
    """A CA that did not sign the server's certificate."""


_bin = pg_binary


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=directory)


def make_certificates(directory: Path, *, server_names: str) -> None:
    """test-ca.crt, other-ca.crt, and server.crt/.key for `server_names` (subjectAltName)."""
    _ca(directory, "test-ca")
    _ca(directory, "other-ca")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=postgres-under-test",
             "-keyout", "server.key", "-out", "server.csr", cwd=directory)
    (directory / "san.ext").write_text(f"subjectAltName={server_names}\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "test-ca.crt", "-CAkey", "test-ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=directory)


@contextmanager
def tls_postgres(directory: Path, *, server_names: str = "IP:127.0.0.1") -> Iterator[TlsPostgres]:
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        # The server refuses to run as root: run it as the postgres user, in a folder of its own
        # (pytest's temporary folders of root are closed to other users).
        as_postgres = ["runuser", "-u", "postgres", "--"]
        directory = Path(tempfile.mkdtemp(prefix="tls-postgres-"))
    try:
        with _server(directory, as_postgres, server_names) as server:
            yield server
    finally:
        if as_postgres:
            shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _server(directory: Path, as_postgres: list[str], server_names: str) -> Iterator[TlsPostgres]:
    certificates = directory / "certs"
    certificates.mkdir()
    make_certificates(certificates, server_names=server_names)
    data = directory / "data"
    if as_postgres:
        shutil.chown(directory, "postgres")
        for path in [certificates, *certificates.iterdir()]:
            shutil.chown(path, "postgres")
    os.chmod(certificates / "server.key", 0o600)
    initdb = subprocess.run([*as_postgres, _bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
                            capture_output=True, text=True, timeout=120)
    if initdb.returncode != 0:
        raise RuntimeError(f"initdb failed: {initdb.stderr[-2000:]}")
    port = free_port()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {directory} -c ssl=on "
        f"-c ssl_cert_file={certificates / 'server.crt'} -c ssl_key_file={certificates / 'server.key'}"
    )
    pg_ctl = _bin("pg_ctl")
    start = subprocess.run([*as_postgres, pg_ctl, "-D", str(data), "-o", options, "-l", str(directory / "log"),
                            "-w", "start"], capture_output=True, text=True, timeout=120)
    if start.returncode != 0:
        log = (directory / "log").read_text() if (directory / "log").exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {start.stderr[-1000:]} {log[-2000:]}")
    try:
        yield TlsPostgres(
            url=f"postgres://postgres@127.0.0.1:{port}/postgres",
            ca_file=certificates / "test-ca.crt",
            other_ca_file=certificates / "other-ca.crt",
        )
    finally:
        subprocess.run([*as_postgres, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsPostgres]:
    """A TLS PostgreSQL for the tests of one module (import the fixture into it)."""
    with tls_postgres(tmp_path_factory.mktemp("tls-postgres")) as server:
        yield server
