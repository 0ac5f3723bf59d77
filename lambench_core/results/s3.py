"""An S3 backend of the ResultStore (MinIO, SeaweedFS, AWS, ...) through the `minio` client.

`s3://bucket/prefix` names the store; the endpoint and keys come from the environment (read and
validated in lambench_core.settings), never from the URL, so URLs can be printed and stored:
  LAMBENCH_S3_ENDPOINT   host:port or http(s)://host:port (default: s3.amazonaws.com)
  LAMBENCH_S3_ACCESS_KEY / LAMBENCH_S3_SECRET_KEY (else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)
  LAMBENCH_S3_REGION     optional
  LAMBENCH_S3_TIMEOUT    seconds to connect and between bytes of an answer (default 60)
A PUT of a whole object is atomic in S3: readers see the old object or the new one.
"""

from __future__ import annotations

import io
from urllib.parse import urlparse

from lambench_core.errors import LambenchError
from lambench_core.settings import S3_ENDPOINT_ENV as ENDPOINT_ENV  # noqa: F401 (re-exported)
from lambench_core.settings import S3_TIMEOUT_ENV as TIMEOUT_ENV  # noqa: F401 (re-exported)
from lambench_core.settings import Settings, settings


def _http_client(secure: bool, environment: Settings):  # -> urllib3.PoolManager
    """minio's default client waits 300 s for each answer and retries 5 times: a frozen or
    unreachable-but-accepting endpoint would hang a step for ~30 min. Here every request is bounded:
    a timeout per connect/read, few retries with backoff (connection refused: ~6 s in all; a server
    that never answers: 3 reads, ~3 min at the default timeout), then one error naming the object."""
    import certifi
    import urllib3
    from urllib3.util import Retry, Timeout

    seconds = environment.s3_timeout
    return urllib3.PoolManager(
        timeout=Timeout(connect=seconds, read=seconds),
        maxsize=10,
        cert_reqs="CERT_REQUIRED" if secure else "CERT_NONE",
        ca_certs=str(environment.ssl_cert_file or certifi.where()),
        retries=Retry(total=5, read=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


class S3Backend:
    def __init__(self, url: str) -> None:
        from minio import Minio

        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise LambenchError(f"{url}: expected s3://bucket[/prefix]")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.url = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        environment = settings()
        endpoint, secure = environment.s3_host
        access, secret = environment.s3_credentials
        self.client = Minio(
            endpoint,
            access_key=access,
            secret_key=secret,
            secure=secure,
            region=environment.s3_region,
            http_client=_http_client(secure, environment),  # bounded timeouts and retries (see _http_client)
        )

    def _key(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def _failure(self, action: str, path: str, exc: Exception) -> LambenchError:
        return LambenchError(f"{self.url}/{path}: {action} failed ({type(exc).__name__}: {exc})")

    def read_bytes(self, path: str) -> bytes | None:
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, self._key(path))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                return None
            raise self._failure("read", path, exc) from None
        except Exception as exc:  # connection errors: name the object and the endpoint
            raise self._failure("read", path, exc) from None
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def write_bytes(self, path: str, data: bytes) -> None:
        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
            self.client.put_object(self.bucket, self._key(path), io.BytesIO(data), len(data))
        except Exception as exc:
            raise self._failure("write", path, exc) from None

    def list(self, prefix: str) -> list[str]:
        base = self._key(prefix).rstrip("/") + "/"
        start = len(self.prefix) + 1 if self.prefix else 0
        try:
            objects = self.client.list_objects(self.bucket, prefix=base, recursive=True)
            return sorted(obj.object_name[start:] for obj in objects if obj.object_name)
        except Exception as exc:
            if getattr(exc, "code", None) == "NoSuchBucket":
                return []
            raise self._failure("list", prefix, exc) from None

    def move(self, path: str, target: str) -> None:
        """A server-side copy, then the original removed (S3 has no rename)."""
        from minio.commonconfig import CopySource
        from minio.error import S3Error

        try:
            self.client.copy_object(self.bucket, self._key(target), CopySource(self.bucket, self._key(path)))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                raise FileNotFoundError(f"{self.url}/{path}") from None
            raise self._failure("move", path, exc) from None
        except Exception as exc:
            raise self._failure("move", path, exc) from None
        self.delete(path)

    def delete(self, path: str) -> None:
        try:
            self.client.remove_object(self.bucket, self._key(path))
        except Exception as exc:
            raise self._failure("delete", path, exc) from None
