"""Several faceshot hosts on one machine (issue 30, point 5): replicas in network namespaces behind nginx.

Each replica is one ``faceshot serve`` in its own network namespace (``fsrep-<N>``, 10.231.0.<N+1>, a veth pair on
the bridge ``fsrep-br0`` = 10.231.0.1/24) with its own empty data directory. What they share is what separate hosts
would share: PostgreSQL (a fresh schema per run; photos in the database, FACESHOT_PHOTO_STORE=database) and Redis
(the rate limits), both reached at 10.231.0.1 through a small TCP forwarder in this script (they listen on
127.0.0.1 only). nginx in front, configured from docker/nginx.conf, docker/nginx/proxy.conf and
docker/nginx/locations.conf with the replicas as upstream servers.

Scenario: (a) enroll on replica A, identify on replica B: the cross-replica visibility delay; (b) a burst of
enrollments through nginx with ``kill -9`` of replica A in the middle, retried by the client: nothing acknowledged
lost, nothing half-stored (API and database checked); (c) replica A restarted on the same data directory: it
names the people enrolled while it was down.

Needs root and a kernel that allows network namespaces (otherwise: "skipped", exit 0). Run:

    PYTHONPATH=. .venv/bin/python bench/replicas.py --replicas 3 --json /tmp/replicas.json
"""

from __future__ import annotations

import argparse
import atexit
import concurrent.futures
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.testing.tcp_proxy import TcpProxy  # noqa: E402  (PostgreSQL and Redis reached from the namespaces)

FACESHOT = str(Path(sys.executable).parent / "faceshot")
API = "/api/v1"
PREFIX = "fsrep-"
BRIDGE = "fsrep-br0"
HOST_IP = "10.231.0.1"
WORK = Path("/tmp/fsrep")
NGINX_DIR = WORK / "nginx"
LFW_DIRS = [ROOT / "tests" / "fixtures" / "lfw", ROOT.parent / "shared" / "data" / "lfw-dev"]
SHARED_PORTS = {5432: ("127.0.0.1", 5432), 6379: ("127.0.0.1", 6379)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


# ------------------------------------------------------------------------------------------- the network


def netns_problem() -> str | None:
    """Why `ip netns` cannot be used here, or None."""
    if os.geteuid() != 0:
        return "not root (network namespaces need root)"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"{PREFIX}probe{os.getpid()}"
    r = sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"`ip netns add` refused: {r.stderr.strip()}"
    try:
        r = sh("ip", "netns", "exec", probe, "ip", "link", "set", "lo", "up", check=False)
        if r.returncode != 0:
            return f"`ip netns exec` refused: {r.stderr.strip()}"
        r = sh("ip", "link", "add", f"{PREFIX}pbr", "type", "bridge", check=False)
        if r.returncode != 0:
            return f"cannot make a bridge: {r.stderr.strip()}"
        sh("ip", "link", "del", f"{PREFIX}pbr", check=False)
    finally:
        sh("ip", "netns", "del", probe, check=False)
    return None


def our_namespaces() -> list[str]:
    out = sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def remove_leftovers() -> list[str]:
    """What a previous (killed) run left: its nginx, the replicas in its namespaces, the namespaces, veths, bridge."""
    removed = []
    pid_file = NGINX_DIR / "nginx.pid"
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if "nginx" in cmdline and str(NGINX_DIR) in cmdline:  # only the nginx this script started
                os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else kill_pid(pid)
                removed.append(f"nginx {pid}")
        except (ValueError, OSError):
            pass
    for ns in our_namespaces():
        for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
            kill_pid(int(pid))
            removed.append(f"pid {pid} in {ns}")
        sh("ip", "netns", "del", ns, check=False)
        removed.append(f"netns {ns}")
    links = sh("ip", "-o", "link", "show", check=False).stdout
    for name in re.findall(r"^\d+: (fsrep-[^:@\s]+)", links, flags=re.M):
        sh("ip", "link", "del", name, check=False)
        removed.append(f"link {name}")
    return removed


class Network:
    """The bridge with the host's address, and one namespace per replica on a veth pair."""

    def __init__(self, n: int):
        self.n = n
        self.namespaces = [f"{PREFIX}{i}" for i in range(1, n + 1)]
        self.ips = [f"10.231.0.{i + 1}" for i in range(1, n + 1)]

    def up(self) -> None:
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for i, (ns, ip) in enumerate(zip(self.namespaces, self.ips), start=1):
            host_end, ns_end = f"{PREFIX}h{i}", f"{PREFIX}n{i}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            sh("ip", "link", "set", ns_end, "netns", ns)
            sh("ip", "link", "set", host_end, "master", BRIDGE)
            sh("ip", "link", "set", host_end, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", ns_end)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_end, "up")
            sh("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", HOST_IP)

    def down(self) -> None:
        for i, ns in enumerate(self.namespaces, start=1):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                kill_pid(int(pid))
            sh("ip", "netns", "del", ns, check=False)
            sh("ip", "link", "del", f"{PREFIX}h{i}", check=False)
        sh("ip", "link", "del", BRIDGE, check=False)


# ------------------------------------------------------------------------------------------- PostgreSQL


class Schema:
    def __init__(self):
        self.name = f"fsrep_{uuid.uuid4().hex[:8]}"
        self.conninfo = f"host={HOST_IP} port=5432 dbname=test user=postgres"
        base = f"postgresql+psycopg://postgres@{HOST_IP}:5432/test"
        sep = "&" if "?" in base else "?"  # as tests/conftest.py fresh_postgres_schema
        self.url = f"{base}{sep}options=-csearch_path%3D{self.name}"

    def connect(self):
        import psycopg

        return psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10)

    @classmethod
    def leftovers(cls) -> list[str]:
        """Schemas of a previous run killed before its cleanup (only one run at a time: the namespaces are fixed)."""
        probe = cls()
        with probe.connect() as conn:
            names = [r[0] for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'fsrep\\_%'").fetchall()]
            for name in names:
                conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        return names

    def create(self) -> None:
        with self.connect() as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')

    def query(self, sql: str) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql.replace("{s}", f'"{self.name}"')).fetchall()

    def drop(self) -> None:
        for attempt in range(5):
            try:
                with self.connect() as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
                return
            except Exception as exc:  # a replica's query deadlocking with the DROP: try again
                if attempt == 4:
                    log(f"could not drop schema {self.name}: {exc}")
                time.sleep(0.5)


# ------------------------------------------------------------------------------------------- replicas


class Replica:
    def __init__(self, index: int, ns: str, ip: str, env: dict[str, str]):
        self.index, self.ns, self.ip = index, ns, ip
        self.data_dir = WORK / str(index) / "data"
        self.log = WORK / str(index) / "serve.log"
        self.env = {**env, "FACESHOT_DATA_DIR": str(self.data_dir)}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.ip}:8000{API}"

    def fresh(self) -> None:
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)
        self.data_dir.mkdir(parents=True)

    def start(self) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, FACESHOT, "serve", "--host", "0.0.0.0", "--port", "8000",
             "--workers", "1", "--log-level", "warning"],
            cwd=ROOT, env=self.env, stdout=open(self.log, "a"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 300) -> float:
        """Seconds from its start until /ready answers 200 (from the host, through the bridge)."""
        t0 = self.started
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica {self.index} exited with {self.proc.returncode}:\n"
                                   f"{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.2)  # polling a starting server
        raise RuntimeError(f"replica {self.index} not ready after {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9 its process group (`ip netns exec` execs the server, so the group is the server's)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass


# ------------------------------------------------------------------------------------------- nginx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_binary() -> str:
    found = shutil.which("nginx") or (Path("/usr/sbin/nginx").exists() and "/usr/sbin/nginx")
    if found:
        return found
    log("nginx missing: apt-get install -y -qq nginx")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    r = subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        r = subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], capture_output=True, text=True, env=env)
    found = shutil.which("nginx") or (Path("/usr/sbin/nginx").exists() and "/usr/sbin/nginx")
    if not found:
        raise RuntimeError(f"could not install nginx: {r.stderr[-2000:]}")
    return found


def write_nginx_config(ips: list[str], port: int) -> tuple[Path, dict]:
    """The repository's configuration, adapted: the replicas as upstream servers, paths under NGINX_DIR."""
    shutil.rmtree(NGINX_DIR, ignore_errors=True)
    NGINX_DIR.mkdir(parents=True)
    main = (ROOT / "docker" / "nginx.conf").read_text()
    proxy = (ROOT / "docker" / "nginx" / "proxy.conf").read_text()
    locations = (ROOT / "docker" / "nginx" / "locations.conf").read_text()
    notes: dict = {}

    servers = "\n".join(f"    server {ip}:8000;" for ip in ips)
    proxy, n = re.subn(r"^\s*server\s+api:8000\s*;", servers, proxy, flags=re.M)
    if n != 1:
        raise RuntimeError("docker/nginx/proxy.conf: no `server api:8000;` line to replace")
    retry = re.search(r"^\s*proxy_next_upstream\b[^;]*;", proxy + locations, flags=re.M)
    if retry:
        notes["retry_rule"] = f"repository's: {retry.group(0).strip()}"
    else:
        proxy += ("\n# added by bench/replicas.py: the repository's proxy.conf has no retry rule\n"
                  "proxy_next_upstream error timeout http_502 http_503;\n")
        notes["retry_rule"] = "added: proxy_next_upstream error timeout http_502 http_503; (proxy.conf has none)"
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        proxy += f"{kind}_temp_path {NGINX_DIR / ('temp_' + kind)};\n"

    main, n1 = re.subn(r"^pid\s+[^;]+;", f"pid {NGINX_DIR / 'nginx.pid'};", main, flags=re.M)
    main = main.replace("/etc/nginx/faceshot/", f"{NGINX_DIR}/")
    main, n2 = re.subn(r"listen\s+8080\s*;", f"listen 127.0.0.1:{port};", main)
    # one worker: the machine's two cores are the replicas'
    main, n3 = re.subn(r"^worker_processes\s+[^;]+;", "worker_processes 1;", main, flags=re.M)
    if not (n1 and n2):
        raise RuntimeError("docker/nginx.conf changed shape: pid or `listen 8080` not found")
    main = f"error_log {NGINX_DIR / 'error.log'} warn;\n" + main
    (NGINX_DIR / "proxy.conf").write_text(proxy)
    (NGINX_DIR / "locations.conf").write_text(locations)
    path = NGINX_DIR / "nginx.conf"
    path.write_text(main)
    notes["worker_processes"] = "1 (repository: auto)" if n3 else "repository's"
    return path, notes


class Nginx:
    def __init__(self, ips: list[str]):
        self.port = free_port()
        self.binary = nginx_binary()
        self.conf, self.notes = write_nginx_config(ips, self.port)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        r = subprocess.run([self.binary, "-t", "-p", f"{NGINX_DIR}/", "-c", str(self.conf)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"nginx -t: {r.stderr}")
        self.proc = subprocess.Popen([self.binary, "-p", f"{NGINX_DIR}/", "-c", str(self.conf), "-g", "daemon off;"],
                                     stdout=open(NGINX_DIR / "stdout.log", "w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(NGINX_DIR / 'error.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGQUIT)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# ------------------------------------------------------------------------------------------- photos


def people_with_photos(min_photos: int = 2) -> list[tuple[str, list[Path]]]:
    """(folder name, photos) of every LFW person with at least ``min_photos``: the fixtures first, then lfw-dev."""
    out, seen = [], set()
    for root in LFW_DIRS:
        if not root.is_dir():
            continue
        for d in sorted(root.iterdir()):
            if not d.is_dir() or d.name in seen:
                continue
            files = sorted(f for f in d.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
            if len(files) >= min_photos:
                out.append((d.name, files))
                seen.add(d.name)
    return out


def named(response: httpx.Response, name: str) -> bool:
    if response.status_code != 200:
        return False
    faces = response.json().get("faces") or []
    return bool(faces) and bool(faces[0].get("person")) and faces[0]["person"]["name"] == name


def identify(client: httpx.Client, base: str, photo: bytes) -> httpx.Response:
    return client.post(f"{base}/identify", files={"image": ("probe.jpg", photo, "image/jpeg")})


def enroll(client: httpx.Client, base: str, name: str, photos: list[bytes]) -> httpx.Response:
    return client.post(f"{base}/enroll", data={"name": name},
                       files=[("images", (f"{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos)])


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))], 1)


# ------------------------------------------------------------------------------------------- scenario


def scenario_visibility(client: httpx.Client, a: Replica, b: Replica, people, rounds: int,
                        poll_timeout: float = 10.0) -> dict:
    """Enroll on A, poll identify on B (<= 2 ms between polls) until B names them: ms from A's 201."""
    delays, polls, identify_ms = [], [], []
    refused, model_misses, invisible, first_check = [], [], [], None
    it = iter(people)
    while len(delays) + len(invisible) < rounds:
        try:
            folder, files = next(it)
        except StopIteration:
            break
        name = folder.replace("_", " ")
        r = enroll(client, a.url, name, [files[0].read_bytes()])
        if r.status_code != 201:
            refused.append({"name": name, "status": r.status_code,
                            "code": (r.json().get("error") or {}).get("code") if r.content else None})
            continue
        acked = time.monotonic()
        probe = files[1].read_bytes()
        n, took = 0, []
        while True:
            t = time.monotonic()
            rb = identify(client, b.url, probe)
            n += 1
            took.append((time.monotonic() - t) * 1000)
            if named(rb, name):
                delays.append((time.monotonic() - acked) * 1000)
                polls.append(n)
                identify_ms += took  # of the rounds B named: a probe nobody names is polled for poll_timeout
                break
            if time.monotonic() - acked > poll_timeout:
                # B never named them: is it the model (A does not either) or visibility?
                if named(identify(client, a.url, probe), name):
                    invisible.append({"name": name, "b_said": rb.json() if rb.status_code == 200 else rb.status_code})
                else:
                    model_misses.append(name)
                break
            time.sleep(0.002)
        if first_check is None and delays:
            first_check = {"name": name, "enrolled_on": a.ip, "identified_on": b.ip, "named": True,
                           "ms": round(delays[-1], 1)}
    return {"rounds": len(delays), "p50_ms": pct(delays, 50), "p95_ms": pct(delays, 95),
            "max_ms": round(max(delays), 1) if delays else None,
            "min_ms": round(min(delays), 1) if delays else None,
            "polls_p50": pct(polls, 50), "polls_max": max(polls) if polls else None,
            "first_poll_correct": sum(1 for n in polls if n == 1),
            "identify_on_b_p50_ms": pct(identify_ms, 50),
            "first_check": first_check, "not_visible_on_b": invisible,
            "probe_not_named_even_by_a": model_misses, "enroll_refused": refused}


def scenario_burst(nginx: Nginx, a: Replica, people, count: int, concurrency: int, kill_after: int) -> dict:
    """~count enrollments through nginx, `concurrency` at a time; kill -9 A after `kill_after` answers."""
    client = httpx.Client(headers=HEADERS, timeout=120)
    lock = threading.Lock()
    done = 0
    killed = threading.Event()
    kill_info: dict = {}
    results: list[dict] = []

    def maybe_kill() -> None:
        with lock:
            due = done >= kill_after and not killed.is_set()
            if due:
                killed.set()
                kill_info["at_answer"] = done
        if due:
            kill_info["t"] = time.monotonic()
            a.kill()
            kill_info["returncode"] = a.proc.returncode
            log(f"kill -9 replica A ({a.ip}) after {kill_info['at_answer']} answers: exit {a.proc.returncode}")

    def one(folder: str, files: list[Path]) -> dict:
        nonlocal done
        name = folder.replace("_", " ")
        photo = files[0].read_bytes()
        res = {"name": name, "attempts": [], "acked": False, "person_id": None, "face_ids": [], "photo": photo,
               "probe": files[1] if len(files) > 1 else files[0], "t_start": time.monotonic()}
        for attempt in range(3):
            try:
                r = enroll(client, nginx.url, name, [photo])
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
                res["attempts"].append(r.status_code if not code else f"{r.status_code} {code}")
                if r.status_code == 201:
                    res.update(acked=True, how="201", person_id=body["person"]["id"],
                               face_ids=[f["id"] for f in body["faces"]])
                    break
                if r.status_code == 409 and code == "person_exists" and attempt > 0:
                    pid = body["error"]["details"]["person_id"]
                    faces = client.get(f"{nginx.url}/people/{pid}/faces")
                    res.update(acked=True, how="409 on retry: found", person_id=pid,
                               face_ids=[f["id"] for f in faces.json()] if faces.status_code == 200 else [])
                    break
                if r.status_code in (502, 503, 504):
                    continue
                res["refused"] = True  # a 4xx the server meant: not retried
                break
            except httpx.TransportError as exc:
                res["attempts"].append(type(exc).__name__)
        res["t_end"] = time.monotonic()
        with lock:
            done += 1
        maybe_kill()
        return res

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(one, folder, files) for folder, files in people[:count]]
        for f in futures:
            results.append(f.result())
    client.close()
    return {"results": results, "kill": kill_info, "seconds": time.monotonic() - t0}


def check_burst(nginx: Nginx, schema: Schema, burst: dict) -> dict:
    client = httpx.Client(headers=HEADERS, timeout=60)
    people, offset = [], 0
    while True:
        page = client.get(f"{nginx.url}/people", params={"limit": 500, "offset": offset}).json()
        people += page["items"]
        offset += len(page["items"])
        if offset >= page["total"] or not page["items"]:
            break
    by_id = {p["id"]: p for p in people}
    acked = [r for r in burst["results"] if r["acked"]]
    missing, photo_problems, face_missing = [], [], []
    for r in acked:
        p = by_id.get(r["person_id"])
        if p is None:
            missing.append(r["name"])
            continue
        faces = client.get(f"{nginx.url}/people/{p['id']}/faces").json()
        if not faces:
            face_missing.append(r["name"])
        for f in faces:
            img = client.get(f"{nginx.url}/people/{p['id']}/faces/{f['id']}/image")
            if img.status_code != 200 or img.content != r["photo"]:
                photo_problems.append({"name": r["name"], "face": f["id"], "status": img.status_code,
                                       "same_bytes": img.content == r["photo"]})
    client.close()
    names = [p["name"] for p in people]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    faceless_api = [p["name"] for p in people if p["face_count"] < 1]
    # the database itself
    face_files = {row[0] for row in schema.query("SELECT image_file FROM {s}.faces WHERE image_file IS NOT NULL")}
    photo_rows = {row[0] for row in schema.query("SELECT name FROM {s}.photos")}
    faceless_db = [row[0] for row in schema.query(
        "SELECT p.name FROM {s}.people p LEFT JOIN {s}.faces f ON f.person_id = p.id "
        "GROUP BY p.id, p.name HAVING count(f.id) = 0")]
    null_images = schema.query("SELECT count(*) FROM {s}.faces WHERE image_file IS NULL")[0][0]
    return {
        "people_listed": len(people), "acknowledged": len(acked),
        "found": len(acked) - len(missing), "missing": missing,
        "faceless_api": faceless_api, "faceless_db": faceless_db,
        "face_photo_problems": photo_problems, "acked_without_faces": face_missing,
        "faces_without_photo_row": sorted(face_files - photo_rows),
        "photo_rows_without_face": sorted(photo_rows - face_files),
        "faces_with_null_image_file": null_images,
        "photo_rows": len(photo_rows), "face_image_files": len(face_files),
        "duplicate_names": duplicates,
        "half_stored": len(set(faceless_api) | set(faceless_db)) + len(face_files ^ photo_rows)
                       + len(photo_problems) + len(face_missing),
    }


def scenario_catch_up(client: httpx.Client, a: Replica, others: list[Replica], burst: dict) -> dict:
    """Replica A, restarted, names the people acknowledged while it was down."""
    t_kill = burst["kill"].get("t")
    during = [r for r in burst["results"] if r["acked"] and t_kill is not None and r["t_end"] >= t_kill]
    named_ok, misses, model_misses = [], [], []
    for r in during:
        probe = r["probe"].read_bytes()
        if named(identify(client, a.url, probe), r["name"]):
            named_ok.append(r["name"])
        elif others and named(identify(client, others[0].url, probe), r["name"]):
            misses.append(r["name"])  # another replica names them, A does not: A has not caught up
        else:
            model_misses.append(r["name"])  # nobody names this probe: the model, not the replica
    return {"enrolled_while_down": len(during), "named_by_a": len(named_ok), "not_caught_up": misses,
            "probe_not_named_by_any": model_misses}


# ------------------------------------------------------------------------------------------- main

ADMIN = secrets.token_hex(16)  # 32 characters, one key for all replicas
HEADERS = {"X-API-Key": ADMIN}


class Cleanup:
    def __init__(self):
        self.steps: list[tuple[str, callable]] = []
        self.done = False

    def add(self, what: str, fn) -> None:
        self.steps.append((what, fn))

    def run(self) -> None:
        if self.done:
            return
        self.done = True
        for what, fn in reversed(self.steps):
            try:
                fn()
            except Exception as exc:  # every step runs, whatever one of them raises
                log(f"cleanup {what}: {exc}")


def summary_markdown(out: dict) -> str:
    v, b, c = out["visibility"], out["burst"], out["restart"]
    lines = [
        f"## faceshot replicas: {out['replicas']} hosts (network namespaces) behind nginx",
        "",
        f"- replicas: {', '.join(out['replica_ips'])} (A = {out['replica_ips'][0]}, B = {out['replica_ips'][1]}); "
        f"ready {', '.join(f'{s:.1f}' for s in out['start_s'])} s "
        "after their start (the first alone: it runs the migrations; then the others together)",
        f"- shared: PostgreSQL schema `{out['schema']}` (photos in the database), Redis, via {HOST_IP} forwarders",
        f"- nginx: `{out['nginx']['config']}` on 127.0.0.1:{out['nginx']['port']}; retry rule: "
        f"{out['nginx']['retry_rule']}",
        "",
        "### a. cross-replica visibility (enroll on A, identify on B)",
        f"- first check: {v['first_check']}",
        f"- delay from A's 201 to B's first correct answer over {v['rounds']} people: p50 {v['p50_ms']} ms, "
        f"p95 {v['p95_ms']} ms, max {v['max_ms']} ms (min {v['min_ms']} ms; one identify on B: p50 "
        f"{v['identify_on_b_p50_ms']} ms; B's first identify already named them {v['first_poll_correct']} of "
        f"{v['rounds']} times, polls needed at most {v['polls_max']})",
        f"- never visible on B (A names them): {len(v['not_visible_on_b'])}; probe not named even by A (model): "
        f"{len(v['probe_not_named_even_by_a'])}; enrollments refused: {len(v['enroll_refused'])}",
        "",
        "### b. burst through nginx, kill -9 of replica A in the middle",
        f"- enrollments attempted {b['attempted']}, acknowledged {b['acknowledged']} "
        f"({b['acknowledged_after_409']} of them found after a 409 on retry), found {b['found']}, "
        f"half-stored {b['half_stored']}, refused by the server {b['refused']}, given up {b['given_up']}",
        f"- A killed after {b['killed_after_answers']} answers (exit {b['kill_returncode']}); requests that needed "
        f"retries: {b['requests_retried']} ({b['retries']} retries); failures seen by the client: "
        f"{b['failures_seen']}",
        f"- database: {b['photo_rows']} photo rows = {b['face_image_files']} faces' image_file: "
        f"{b['photos_equal_faces']}; people without faces: {len(b['faceless'])}; duplicate names: "
        f"{b['duplicate_names']}; photos served byte-identical: {b['photos_served_ok']}",
        f"- burst took {b['seconds']:.1f} s",
        "",
        "### c. replica A restarted",
        f"- ready after {c['restart_s']:.1f} s; names {c['named_by_a']} of the {c['enrolled_while_down']} people "
        f"acknowledged while it was down (not caught up: {c['not_caught_up']}; probe named by no replica: "
        f"{c['probe_not_named_by_any']})",
        "",
        f"**verdict: {out['verdict']}** (total {out['seconds']:.0f} s)",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=2, help="at least 2")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--visibility-rounds", type=int, default=30)
    parser.add_argument("--burst", type=int, default=40, help="enrollments in the burst")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.replicas < 2:
        parser.error("--replicas must be at least 2")

    problem = netns_problem()
    if problem:
        print(f"skipped: cannot use `ip netns` here: {problem}")
        if args.json:
            args.json.write_text(json.dumps({"skipped": problem}, indent=2))
        return 0

    t_start = time.monotonic()
    cleanup = Cleanup()
    atexit.register(cleanup.run)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    try:
        left = remove_leftovers()
        if left:
            log(f"removed a previous run's leftovers: {', '.join(left)}")
        WORK.mkdir(parents=True, exist_ok=True)
        net = Network(args.replicas)
        cleanup.add("network", net.down)
        net.up()
        forwarders = []
        for port, target in SHARED_PORTS.items():
            fwd = TcpProxy(target, host=HOST_IP, port=port)
            fwd.restore()
            cleanup.add(f"forwarder {port}", fwd.cut)
            forwarders.append(fwd)
        stale = Schema.leftovers()
        if stale:
            log(f"dropped a previous run's schemas: {', '.join(stale)}")
        schema = Schema()
        schema.create()
        cleanup.add("schema", schema.drop)
        log(f"network up, schema {schema.name}")

        env = {k: v for k, v in os.environ.items() if not k.startswith("FACESHOT_")}
        env.update({
            "FACESHOT_DATABASE_URL": schema.url, "FACESHOT_PHOTO_STORE": "database", "FACESHOT_ADMIN_KEY": ADMIN,
            "FACESHOT_RATE_LIMIT_STORAGE": f"redis://{HOST_IP}:6379", "FACESHOT_OFFLINE": "true",
            "OMP_NUM_THREADS": "1", "FACESHOT_TORCH_THREADS": "1", "PYTHONPATH": str(ROOT),
        })
        # nginx is the replicas' one client: its X-Forwarded-For names the caller (as compose's FORWARDED_ALLOW_IPS)
        env["FORWARDED_ALLOW_IPS"] = HOST_IP
        replicas = [Replica(i, ns, ip, env) for i, (ns, ip) in enumerate(zip(net.namespaces, net.ips), start=1)]
        for r in replicas:
            r.fresh()
            cleanup.add(f"replica {r.index}", r.stop)
        start_s = []
        replicas[0].start()
        start_s.append(replicas[0].wait_ready())  # alone: it runs the migrations
        log(f"replica 1 ready in {start_s[0]:.1f} s")
        for r in replicas[1:]:
            r.start()
        for r in replicas[1:]:
            start_s.append(r.wait_ready())
            log(f"replica {r.index} ready in {start_s[-1]:.1f} s")

        nginx = Nginx(net.ips)
        cleanup.add("nginx", nginx.stop)
        nginx.start()
        log(f"nginx on 127.0.0.1:{nginx.port} ({nginx.conf})")
        ready = httpx.get(f"{nginx.url}/ready", timeout=10)
        if ready.status_code != 200:
            raise RuntimeError(f"nginx -> /ready: {ready.status_code} {ready.text[:300]}")

        all_people = people_with_photos(2)
        rng = random.Random(args.seed)
        fixtures, rest = all_people[:12], all_people[12:]
        rng.shuffle(rest)
        a, b = replicas[0], replicas[1]
        client = httpx.Client(headers=HEADERS, timeout=60)

        # a. visibility: the fixtures first (the first one is the plain check), then lfw-dev people
        log("a. visibility")
        vis_people = fixtures + rest[:args.visibility_rounds * 2]
        visibility = scenario_visibility(client, a, b, vis_people, args.visibility_rounds)
        used = {n for n, _ in vis_people}
        burst_people = [p for p in rest if p[0] not in used][:args.burst]

        # b. burst through nginx, A killed in the middle
        log("b. burst")
        burst = scenario_burst(nginx, a, burst_people, args.burst, args.concurrency, kill_after=args.burst // 2)
        check = check_burst(nginx, schema, burst)
        results = burst["results"]
        retried = [r for r in results if len(r["attempts"]) > 1]

        # c. A restarted on its own data directory
        log("c. restart A")
        a.start()
        restart_s = a.wait_ready()
        log(f"replica A ready again in {restart_s:.1f} s")
        catch_up = scenario_catch_up(client, a, replicas[1:], burst)
        catch_up["restart_s"] = round(restart_s, 1)
        client.close()

        burst_out = {
            "attempted": len(results), "acknowledged": check["acknowledged"],
            "acknowledged_after_409": sum(1 for r in results if r.get("how", "").startswith("409")),
            "found": check["found"], "missing": check["missing"], "half_stored": check["half_stored"],
            "refused": sum(1 for r in results if r.get("refused")),
            "refusals": [{"name": r["name"], "attempts": r["attempts"]} for r in results if r.get("refused")],
            "given_up": sum(1 for r in results if not r["acked"] and not r.get("refused")),
            "requests_retried": len(retried), "retries": sum(len(r["attempts"]) - 1 for r in retried),
            "retried": [{"name": r["name"], "attempts": r["attempts"], "how": r.get("how")} for r in retried],
            "failures_seen": sorted({str(x) for r in results for x in r["attempts"] if x != 201}),
            "killed_after_answers": burst["kill"].get("at_answer"), "kill_returncode": burst["kill"].get("returncode"),
            "photo_rows": check["photo_rows"], "face_image_files": check["face_image_files"],
            "photos_equal_faces": not check["faces_without_photo_row"] and not check["photo_rows_without_face"],
            "faces_without_photo_row": check["faces_without_photo_row"],
            "photo_rows_without_face": check["photo_rows_without_face"],
            "faces_with_null_image_file": check["faces_with_null_image_file"],
            "faceless": sorted(set(check["faceless_api"]) | set(check["faceless_db"])),
            "photos_served_ok": not check["face_photo_problems"], "face_photo_problems": check["face_photo_problems"],
            "duplicate_names": check["duplicate_names"], "people_listed": check["people_listed"],
            "seconds": round(burst["seconds"], 1),
        }
        ok = (visibility["rounds"] > 0 and not visibility["not_visible_on_b"]
              and burst_out["found"] == burst_out["acknowledged"] and burst_out["half_stored"] == 0
              and not burst_out["duplicate_names"] and not catch_up["not_caught_up"]
              and burst_out["kill_returncode"] == -9)
        out = {
            "replicas": args.replicas, "replica_ips": net.ips, "start_s": [round(s, 1) for s in start_s],
            "schema": schema.name, "database_url": schema.url,
            "nginx": {"config": str(nginx.conf), "port": nginx.port, **nginx.notes},
            "forwarded_connections": {str(f.port): f.connections for f in forwarders},
            "visibility": visibility, "burst": burst_out, "restart": catch_up,
            "verdict": "pass" if ok else "FAIL",
        }
        out["seconds"] = round(time.monotonic() - t_start, 1)
        print(summary_markdown(out))
        if args.json:
            args.json.write_text(json.dumps(out, indent=2, default=str))
        return 0 if ok else 1
    finally:
        cleanup.run()
        log(f"cleaned up ({time.monotonic() - t_start:.0f} s in all)")


if __name__ == "__main__":
    sys.exit(main())
