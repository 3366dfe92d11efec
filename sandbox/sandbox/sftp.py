"""A real OpenSSH ``sshd`` serving SFTP on a free loopback port, and a proxy that drops.

For the file-feed tests, benchmarks and the demo::

    sshd = start_sshd(tmp_path)          # own host key, one authorised client key
    sshd.known_hosts_line                # "[127.0.0.1]:PORT ssh-ed25519 AAAA..."
    sshd.write_known_hosts(path)         # a known_hosts file holding that line
    sshd.client_key_path, sshd.username, sshd.upload_dir
    with DroppingProxy(sshd.port, drop_after_bytes=200_000, drops=1) as proxy:
        ...                              # connect to proxy.port: the first connection is cut
    sshd.stop()

The daemon is Debian's ``/usr/sbin/sshd`` (package openssh-server) run in the foreground with
its own config (``-D -e -f``): key-based login only, ``Subsystem sftp internal-sftp``, the
current user (root in CI: ``PermitRootLogin prohibit-password``), ``StrictModes no`` because
the key files live under a temporary directory. Its log is ``<workdir>/sshd.log``.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from sandbox.pgp import Recipient

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"

__all__ = [
    "DroppingProxy",
    "FileDrop",
    "Sshd",
    "free_port",
    "keygen",
    "start_file_drop",
    "start_sshd",
    "target_env",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519") -> str:
    """A new passphrase-less OpenSSH key at ``path``; returns the public key line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-C", "hrsync-sandbox", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_name(path.name + ".pub").read_text(encoding="ascii").strip()


@dataclass
class Sshd:
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    username: str
    host_key_path: Path
    host_public_key: str  # "ssh-ed25519 AAAA... comment"
    client_key_path: Path
    upload_dir: Path
    host: str = "127.0.0.1"
    _stopped: bool = field(default=False, repr=False)

    def known_hosts_line(self, port: int | None = None) -> str:
        """The known_hosts entry for this server (reached directly or via a proxy port)."""
        kind, blob = self.host_public_key.split()[:2]
        return f"[{self.host}]:{port or self.port} {kind} {blob}"

    @property
    def known_hosts(self) -> str:
        return self.known_hosts_line()

    def write_known_hosts(self, path: Path, *ports: int) -> Path:
        """A known_hosts file for this server on its port (and any proxy ``ports``)."""
        lines = [self.known_hosts_line(p) for p in (self.port, *ports)]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="ascii")
        return path

    def log(self) -> str:
        path = self.workdir / "sshd.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Sshd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sshd(workdir: Path, *, username: str | None = None) -> Sshd:
    """Start ``sshd`` serving SFTP for the current user on a free loopback port."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    user = username or getpass.getuser()
    host_key = workdir / "ssh_host_ed25519_key"
    host_public = keygen(host_key)
    client_key = workdir / "client_ed25519"
    client_public = keygen(client_key)
    authorized = workdir / "authorized_keys"
    authorized.write_text(client_public + "\n", encoding="ascii")
    authorized.chmod(0o600)
    upload = workdir / "upload"
    upload.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation
    config = workdir / "sshd_config"
    log = workdir / "sshd.log"
    for _ in range(5):
        port = free_port()
        config.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "AuthenticationMethods publickey",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    f"AllowUsers {user}",
                    "X11Forwarding no",
                    "AllowTcpForwarding no",
                    "PrintMotd no",
                    "LogLevel VERBOSE",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            ),
            encoding="ascii",
        )
        with log.open("ab") as err:
            process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.settimeout(2)
                    if s.recv(4).startswith(b"SSH-"):  # the banner: sshd is serving
                        return Sshd(
                            port, process, workdir, user, host_key, host_public, client_key, upload
                        )
            except OSError:
                time.sleep(0.05)
        if process.poll() is None:
            process.kill()
        process.wait()
        if "Address already in use" not in log.read_text(errors="replace"):
            break
    raise RuntimeError(f"sshd did not start; its log ({log}):\n{log.read_text(errors='replace')}")


class DroppingProxy:
    """A loopback TCP proxy to ``upstream_port`` that cuts a connection after some bytes.

    The first ``drops`` connections are closed (both sides, abruptly) once
    ``drop_after_bytes`` bytes went from the client to the server; later connections pass
    untouched. ``connections`` counts the connections accepted, ``dropped`` those cut.
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        drop_after_bytes: int,
        drops: int = 1,
        upstream_host: str = "127.0.0.1",
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.drop_after_bytes = drop_after_bytes
        self.drops = drops
        self.connections = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closing = False
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True, name="dropping-proxy")
        self._thread.start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                cut = self.connections <= self.drops
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            limit = self.drop_after_bytes if cut else None
            threading.Thread(target=self._pipe, args=(client, upstream, limit), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    with self._lock:
                        self.dropped += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()

    def __enter__(self) -> DroppingProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def target_env(
    prefix: str, sshd: Sshd, public_key: str, remote_dir: Path, workdir: Path
) -> dict[str, str]:
    """Environment settings that point a file-feed target (``TARGET_X``) at this sshd and a
    PGP recipient: ``target_env("TARGET_PAYROLL_FILE", sshd, recipient.public_key, ...)``."""
    remote_dir.mkdir(parents=True, exist_ok=True)
    return {
        f"{prefix}_SFTP_HOST": sshd.host,
        f"{prefix}_SFTP_PORT": str(sshd.port),
        f"{prefix}_SFTP_USERNAME": sshd.username,
        f"{prefix}_SFTP_PRIVATE_KEY_PATH": str(sshd.client_key_path),
        f"{prefix}_SFTP_KNOWN_HOSTS_PATH": str(sshd.write_known_hosts(workdir / "known_hosts")),
        f"{prefix}_SFTP_REMOTE_DIR": str(remote_dir),
        f"{prefix}_PGP_RECIPIENT_PUBLIC_KEY": public_key,
        f"{prefix}_TRANSFER_LEDGER_PATH": str(workdir / "transfers.sqlite"),
    }


@dataclass
class FileDrop:
    """An sshd and a PGP recipient for the demo's file feeds: ``env(prefix, folder)`` points a
    target at ``<upload>/<folder>``; ``summary(folder)`` decrypts what arrived there."""

    sshd: Sshd
    recipient: Recipient
    workdir: Path

    def env(self, prefix: str, folder: str) -> dict[str, str]:
        remote = self.sshd.upload_dir / folder
        return target_env(prefix, self.sshd, self.recipient.public_key, remote, self.workdir)

    def summary(self, folder: str) -> list[str]:
        remote = self.sshd.upload_dir / folder
        files = sorted(remote.iterdir()) if remote.exists() else []
        lines = [f"  files in the SFTP drop {remote}: {len(files)}"]
        for path in files[:5]:
            count = self.recipient.decrypt_file(path).count(b"\n")
            lines.append(
                f"    {path.name}  {path.stat().st_size:,} bytes encrypted, "
                f"{count:,} lines decrypted"
            )
        return lines

    def stop(self) -> None:
        self.sshd.stop()
        self.recipient.close()


def start_file_drop(workdir: Path) -> FileDrop:
    sshd = start_sshd(workdir / "sshd")
    try:
        return FileDrop(sshd, Recipient.create(), workdir)
    except BaseException:
        sshd.stop()
        raise
