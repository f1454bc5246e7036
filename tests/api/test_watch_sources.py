"""`faceshot watch` opens camera streams and video files, not whatever a stream points FFmpeg at (issue 26,
point 12): an HTTP "camera" answering with an HLS playlist made the watcher fetch every URL the playlist named."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.live.watch import SourceLost, frames
from app.testing.clips import door_clip


class Recorder:
    """A loopback HTTP server answering ``body`` with ``ctype`` and recording every path asked for."""

    def __init__(self, body: bytes = b"", ctype: str = "application/octet-stream"):
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def internal():
    """An "internal host" the playlist points at: it must never be asked for anything."""
    server = Recorder(b"\x47" * 188 * 10, "video/mp2t")
    yield server
    server.close()


def playlist(target: str) -> bytes:
    return (f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{target}/admin-console/secret.ts\n"
            f"#EXTINF:2.0,\n{target}/second.ts\n#EXT-X-ENDLIST\n").encode()


def test_a_camera_that_answers_with_a_playlist_cannot_make_the_watcher_fetch_its_urls(internal):
    camera = Recorder(playlist(internal.url), "application/vnd.apple.mpegurl")
    try:
        with pytest.raises(SourceLost):
            for _ in frames(f"{camera.url}/stream.m3u8", fps=5, reconnect=False):
                pass
        assert camera.paths  # the camera itself was asked
        assert internal.paths == [], internal.paths  # and nothing it named
    finally:
        camera.close()


def test_playlists_are_followed_only_when_asked(internal):
    camera = Recorder(playlist(internal.url), "application/vnd.apple.mpegurl")
    try:
        try:
            for _ in frames(f"{camera.url}/stream.m3u8", fps=5, reconnect=False, playlists=True):
                pass
        except SourceLost:
            pass  # the "segments" are not video: what matters is that they were asked for
        assert internal.paths, "with --allow-playlists the playlist's segments are fetched"
    finally:
        camera.close()


def test_video_files_still_play(photos, tmp_path):
    clip = door_clip([(photos["Emma_Watson"][0], 0.2, 1.0)], tmp_path / "door.avi", length_s=1.2)
    assert sum(1 for _ in frames(str(clip), fps=5, reconnect=False)) >= 5
