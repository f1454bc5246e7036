"""Run the test OpenID Connect provider (tests/oidc_provider/server.mjs, panva's oidc-provider) as a subprocess.

    with OidcProvider().start(client_id="faceshot", client_secret="s3cret",
                              redirect_uris=["http://127.0.0.1:8000/admin/oidc/callback"]) as op:
        op.issuer                      # "http://127.0.0.1:PORT"; discovery: op.discovery_url
        op.set_groups("ann", [])       # ann loses faceshot-admins before her next sign-in
        op.tamper("wrong_key")         # the NEXT token response's id_token carries that defect

Users: ann (groups ["faceshot-admins"]), bob (["warehouse-viewers"]), eve ([]); password = login + "-password".
`npm ci` runs in this folder the first time (node_modules missing or older than package-lock.json). Standard library
only: no faceshot imports, no third-party packages.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.mjs"

USERS = {"ann": ["faceshot-admins"], "bob": ["warehouse-viewers"], "eve": []}
# loopback only: never through an HTTP(S)_PROXY of the environment
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
TAMPER_KINDS = ("none", "expired", "wrong_key", "wrong_audience", "wrong_issuer", "wrong_nonce")


def password_for(login: str) -> str:
    return f"{login}-password"


class OidcProviderError(RuntimeError):
    """The provider could not be installed, started or driven."""


def node_available() -> bool:
    return shutil.which("node") is not None


def ensure_node_modules(timeout: float = 300.0) -> None:
    """`npm ci` in tests/oidc_provider unless node_modules is there and not older than package-lock.json."""
    if _installed():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise OidcProviderError(f"npm is not on PATH: cannot install the test OIDC provider's packages in {HERE}")
    # one installer at a time (parallel test workers)
    with _file_lock(Path(tempfile.gettempdir()) / "faceshot-oidc-provider-npm.lock"):
        if _installed():
            return
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=HERE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise OidcProviderError(f"`npm ci` in {HERE} took more than {timeout:.0f} s") from exc
        if done.returncode != 0:
            raise OidcProviderError(
                f"`npm ci --no-audit --no-fund` in {HERE} failed (exit {done.returncode}):\n{done.stdout[-4000:]}"
            )


def _installed() -> bool:
    """node_modules holds oidc-provider, installed from the current package-lock.json (npm writes its copy)."""
    installed = HERE / "node_modules" / ".package-lock.json"
    return (
        (HERE / "node_modules" / "oidc-provider").is_dir()
        and installed.exists()
        and installed.stat().st_mtime >= (HERE / "package-lock.json").stat().st_mtime
    )


class _file_lock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = None

    def __enter__(self):
        self.fh = open(self.path, "a")  # noqa: SIM115
        try:
            import fcntl

            fcntl.flock(self.fh, fcntl.LOCK_EX)
        except ImportError:  # not POSIX: no lock
            pass
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()  # closing releases the lock


class OidcProvider:
    """One oidc-provider process on 127.0.0.1 with one confidential client (PKCE S256 required)."""

    def __init__(self) -> None:
        self.issuer: str | None = None
        self.port: int | None = None
        self.client_id: str | None = None
        self.client_secret: str | None = None
        self.redirect_uris: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    # ---- life cycle ------------------------------------------------------------------------------------------

    def start(
        self,
        port: int | None = None,
        client_id: str = "faceshot",
        client_secret: str = "faceshot-test-secret",
        redirect_uris: Sequence[str] = ("http://127.0.0.1:8000/admin/oidc/callback",),
        timeout: float = 30.0,
    ) -> OidcProvider:
        if self._proc is not None:
            raise OidcProviderError("already started")
        node = shutil.which("node")
        if node is None:
            raise OidcProviderError("node is not on PATH: the test OIDC provider needs Node.js")
        if isinstance(redirect_uris, str) or not redirect_uris:
            raise OidcProviderError("redirect_uris must be a non-empty list of URLs")
        ensure_node_modules()

        self.client_id, self.client_secret, self.redirect_uris = client_id, client_secret, list(redirect_uris)
        cmd = [node, str(SERVER), "--port", str(port or 0), "--client-id", client_id, "--client-secret", client_secret]
        for uri in self.redirect_uris:
            cmd += ["--redirect-uri", uri]
        self._ready.clear()
        self._output.clear()
        self._proc = subprocess.Popen(
            cmd,
            cwd=HERE,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, "NODE_ENV": "test"},
        )
        self._reader = threading.Thread(target=self._read_output, name="oidc-provider-output", daemon=True)
        self._reader.start()

        if not self._ready.wait(timeout) or self.issuer is None:
            code = self._proc.poll()
            self.stop()
            state = f"exited with {code}" if code is not None else f"not ready within {timeout:.0f} s"
            raise OidcProviderError(f"the test OIDC provider {state}; its output:\n{self.output}")
        self.port = int(self.issuer.rsplit(":", 1)[1])
        return self

    def _read_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            line = line.rstrip("\n")
            self._output.append(line)
            if not self._ready.is_set() and line.startswith("ready http"):
                self.issuer = line.split(" ", 1)[1].strip()
                self._ready.set()
        self._ready.set()  # the process ended: wake start() up

    @property
    def output(self) -> str:
        """The last lines the provider printed (stdout and stderr)."""
        return "\n".join(self._output)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: server.mjs closes its server and exits 0
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> OidcProvider:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- test control ----------------------------------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        return f"{self._require_issuer()}/.well-known/openid-configuration"

    def set_groups(self, login: str, groups: Sequence[str]) -> None:
        """Change a user's groups; the next ID token issued for them carries the new list."""
        if isinstance(groups, str):
            raise TypeError("groups must be a list of strings")
        self._control("POST", f"/__test/users/{login}", {"groups": list(groups)})

    def tamper(self, kind: str | None) -> None:
        """Make the NEXT token response's id_token defective: one of TAMPER_KINDS (None clears it)."""
        if kind is not None and kind not in TAMPER_KINDS:
            raise ValueError(f"kind must be one of {TAMPER_KINDS} or None, not {kind!r}")
        self._control("POST", "/__test/tamper", {"id_token": kind})

    def health(self) -> bool:
        try:
            self._control("GET", "/__test/health")
        except OidcProviderError:
            return False
        return True

    def _require_issuer(self) -> str:
        if self.issuer is None or self._proc is None:
            raise OidcProviderError("the provider is not running: call start() first")
        return self.issuer

    def _control(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self._require_issuer() + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with _NO_PROXY.open(request, timeout=10) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise OidcProviderError(f"{method} {path} -> {exc.code}: {detail}") from exc
        except OSError as exc:
            raise OidcProviderError(f"{method} {path} failed: {exc}") from exc
