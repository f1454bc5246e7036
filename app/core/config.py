"""All service settings, read once from ``FACESHOT_*`` environment variables.

Defaults run on a laptop: SQLite and photos under ``./data``, the offline
``dlib`` encoder, the GPU only when torch sees one.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACESHOT_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None  # default: sqlite:///<data_dir>/faceshot.db
    admin_key: str | None = None  # first admin key; generated into <data_dir>/admin_key if unset
    encoder: str = "dlib"  # dlib | facenet-vggface2 | facenet-casia-webface | path/to/checkpoint.pt
    threshold: float | None = None  # overrides the encoder's calibrated distance threshold
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    store_images: bool = True  # keep enrollment photos (needed to re-embed with a new encoder)
    max_upload_bytes: int = 15 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    torch_threads: int | None = None  # default: cores / workers
    workers: int = 1
    gallery_sync_interval_s: float = 0.0  # 0: check for other processes' writes before every search
    near_duplicate_distance: float = 0.12
    admin_password: SecretStr | None = None  # sign-in to /admin with this as well as with an admin key
    admin_cookie_secure: bool = False  # set true behind HTTPS: the admin session cookie is then Secure
    admin_session_hours: float = 12.0
    decode_timeout_s: float = 5.0  # an image that takes longer to decode is refused (decode_timeout)
    rate_limit: str = "1200/minute"  # per API key, `limits` syntax ("100/second;2000/minute"); "" turns it off
    auth_failure_limit: str = "30/minute"  # wrong or missing keys per client address before 429; "" turns it off
    rate_limit_storage: str = "memory://"  # per process; redis://host:6379 makes all workers share one count
    cors_origins: str = ""  # comma-separated origins a browser may call the API from; empty: CORS off

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'faceshot.db').resolve()}"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def effective_torch_threads(self) -> int:
        return self.torch_threads or max(1, (os.cpu_count() or 1) // max(1, self.workers))


@lru_cache
def get_settings() -> Settings:
    return Settings()
