"""A 500 is answered and the client's keep-alive connection kept (issue 26, point 8): Starlette's outermost
handler answered and re-raised, and the server then dropped the connection."""

import socket

from tests.admin.conftest import running_app


def exchange(sock: socket.socket, request: bytes) -> bytes:
    """One HTTP/1.1 request on an open connection, and its whole answer (headers and Content-Length body)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-answer"
        body += chunk
    return head + b"\r\n\r\n" + body


def test_an_unexpected_error_is_a_500_and_the_connection_stays_open(pipeline, tmp_path):
    with running_app(pipeline, tmp_path / "data") as server:
        def boom():
            raise RuntimeError("a bug")

        server.app.add_api_route("/api/v1/test-boom", boom)
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            answer = exchange(sock, b"GET /api/v1/test-boom HTTP/1.1\r\nHost: t\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 500") and b'"internal_error"' in answer, answer[:300]
            assert b"a bug" not in answer  # nothing of the error's text reaches the client
            answer = exchange(sock, b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
