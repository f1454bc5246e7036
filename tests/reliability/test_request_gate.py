"""No unauthenticated byte reaches the disk; the byte limit holds for chunked bodies (issue 11, point 2).

Measured on a real `faceshot serve`: how much of a 400 MB chunked upload the server takes
before it answers, how long that takes, and how many bytes the process writes to storage
meanwhile (``write_bytes`` of /proc/<pid>/io).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from app.testing.server import ADMIN, Server

CHUNK = b"x" * (1 << 20)


def written_bytes(pid: int) -> int:
    """Bytes this process caused to be written to storage (temporary files included)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise AssertionError("no write_bytes in /proc/<pid>/io")


def chunked_upload(port: int, path: str, total_mb: int, key: str | None) -> dict:
    """POST a multipart photo of ``total_mb`` MB with Transfer-Encoding: chunked; stop sending at the answer."""
    boundary = "faceshotboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    headers = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Transfer-Encoding: chunked",
               f"Content-Type: multipart/form-data; boundary={boundary}", "Connection: close"]
    if key:
        headers.append(f"X-API-Key: {key}")
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(60)
    answer = bytearray()
    answered = threading.Event()

    def read_answer():
        try:
            while data := sock.recv(65536):
                answer.extend(data)
                answered.set()
        except OSError:
            pass
        answered.set()

    reader = threading.Thread(target=read_answer, daemon=True)
    t0 = time.monotonic()
    sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
    reader.start()
    sent = 0
    try:
        for i in range(total_mb + 1):
            if answered.is_set():
                break
            piece = head if i == 0 else CHUNK
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        else:
            tail = f"\r\n--{boundary}--\r\n".encode()
            sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
    except OSError:
        pass  # the server closed the connection on us: the answer is what it said
    answered.wait(60)
    elapsed = time.monotonic() - t0
    reader.join(10)
    sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else None
    return {"status": status, "body": bytes(answer), "sent_mb": sent / (1 << 20), "seconds": elapsed}


@pytest.mark.slow
def test_anonymous_chunked_body_is_refused_before_it_is_read(tmp_path, server_factory):
    spool = tmp_path / "spool"
    spool.mkdir()
    server: Server = server_factory(tmp_path / "data")
    server.start(env={"TMPDIR": str(spool)})
    before = written_bytes(server.proc.pid)
    refused = chunked_upload(server.port, "/api/v1/identify", 400, key=None)
    wrong = chunked_upload(server.port, "/api/v1/enroll", 400, key="fs_not_a_key")
    after = written_bytes(server.proc.pid)
    for r in (refused, wrong):
        assert r["status"] == 401, r["body"][:300]
        assert b'"code":"unauthorized"' in r["body"]
        assert r["sent_mb"] < 32, f"the server took {r['sent_mb']:.0f} MB from a caller without a key"
        assert r["seconds"] < 10
    assert after - before < (1 << 20), f"{after - before} bytes written for anonymous uploads"
    # no spooled upload left behind (ONNX Runtime's import writes a 51-byte session id, .ses, into TMPDIR)
    assert [p for p in spool.iterdir() if p.is_file() and p.name != ".ses"] == []
    print(f"anonymous 400 MB chunked upload: refused after {refused['sent_mb']:.1f} MB sent, "
          f"{refused['seconds'] * 1000:.0f} ms; {after - before} bytes written by the server")


@pytest.mark.slow
def test_chunked_body_over_the_limit_is_cut_off(tmp_path, server_factory):
    server: Server = server_factory(tmp_path / "data")
    # one photo of at most 1 MB per request here: the request bound is 10 x 1 MB + 1 MB of form fields
    server.start(env={"FACESHOT_MAX_UPLOAD_BYTES": str(1 << 20)})
    r = chunked_upload(server.port, "/api/v1/identify", 400, key=ADMIN)
    assert r["status"] == 413, r["body"][:300]
    assert b'"code":"request_too_large"' in r["body"]
    assert r["sent_mb"] < 64, f"the server read {r['sent_mb']:.0f} MB past a limit of 11 MB"
