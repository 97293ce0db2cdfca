"""The serving store on S3 or an S3-compatible object store (serving/store.py says what a store
promises; this is how an object store keeps it without a rename or a lock).

The client is boto3's. It reads the same standard variables as LanceDB's client, so one set
configures both: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), AWS_REGION or
AWS_DEFAULT_REGION, and for an S3-compatible store AWS_ENDPOINT (AWS_ENDPOINT_URL is also
read) with AWS_ALLOW_HTTP=true for a plain-HTTP endpoint.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import polars as pl

from serving.errors import ServingError
from serving.store import S3_SCHEME, PointerConflict, PointerUpdate, Store, StoreError, Writer

# Pointer writes the store refused because another writer changed the pointer first: S3 says
# 412 (If-Match/If-None-Match failed), 409 (two conditional writes at once) or 404 (If-Match on
# a pointer deleted meanwhile).
CONFLICT_STATUSES = (404, 409, 412)
HISTORY_READERS = 16


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def s3_settings() -> tuple[str | None, str | None, bool, str | None, int]:
    """(endpoint, region, allow_http, access key id) from the standard AWS variables, and this
    process's id: a boto3 client must not cross a fork."""
    env = os.environ
    endpoint = env.get("AWS_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    allow_http = _truthy(env.get("AWS_ALLOW_HTTP"))
    return endpoint or None, region or None, allow_http, env.get("AWS_ACCESS_KEY_ID"), os.getpid()


@functools.lru_cache(maxsize=8)
def s3_client(
    endpoint: str | None, region: str | None, allow_http: bool, access_key_id: str | None, pid: int
):
    """One boto3 client per configuration (making one costs tens of milliseconds; clients are
    thread-safe). The access key id is part of the cache key so changed credentials get a new
    client; boto3 itself reads the secret and the session token from the environment."""
    if endpoint and endpoint.lower().startswith("http://") and not allow_http:
        raise StoreError(
            f"AWS_ENDPOINT {endpoint} is plain HTTP; set AWS_ALLOW_HTTP=true to allow it "
            "(as LanceDB requires too), or use an https:// endpoint."
        )
    import boto3
    from botocore.config import Config

    # A custom endpoint (MinIO, moto, Ceph, ...) usually wants path-style addressing, which is
    # also what LanceDB's client uses unless told otherwise.
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path"} if endpoint else None,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region, config=config)


def _lost_race(error) -> bool:
    """A conditional write refused because another writer got there first."""
    code, status = _status(error)
    if code == "NoSuchBucket":
        return False
    return status in CONFLICT_STATUSES or code in ("PreconditionFailed", "ConditionalRequestConflict")


def _already_written(store: S3Store, key: str, data: bytes) -> bool:
    """Whether `key` holds exactly `data`: a conditional PUT whose answer was lost is retried by
    botocore, and the retry is refused because the first attempt succeeded. A pointer carries
    its write's microsecond timestamp, so equal bytes are this writer's own write."""
    try:
        return store.read_bytes(key) == data
    except FileNotFoundError:
        return False


def _status(error) -> tuple[str, int]:
    response = getattr(error, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", "")), int(
        response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    )


class S3Store(Store):
    def __init__(self, uri: str):
        bucket, _, prefix = uri[len(S3_SCHEME) :].partition("/")
        if not bucket:
            raise ServingError(f"serving root {uri} names no bucket; use s3://bucket/prefix.")
        self.root = uri.rstrip("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @property
    def client(self):
        return s3_client(*s3_settings())

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def describe(self, key: str) -> str:
        return f"{self.root}/{key}"

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """boto3's errors as this project's: a missing object is FileNotFoundError (as for a
        file), anything else a StoreError that says what to check."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except S3UploadFailedError as error:  # the managed transfer's wrapper of a ClientError
            raise StoreError(
                f"could not upload {self.describe(key)} ({error}); "
                "check the bucket and the AWS_* credentials."
            ) from None
        except ClientError as error:
            code, status = _status(error)
            if code in ("NoSuchKey", "NotFound") or (status == 404 and code != "NoSuchBucket"):
                raise FileNotFoundError(self.describe(key)) from None
            message = error.response.get("Error", {}).get("Message", "")
            raise StoreError(
                f"the object store refused a request for {self.describe(key)} ({code or status}: {message}); "
                "check the bucket and the AWS_* credentials."
            ) from None
        except BotoCoreError as error:
            raise StoreError(
                f"cannot reach the object store for {self.describe(key)} ({error}); "
                "check AWS_ENDPOINT, AWS_REGION and the credentials."
            ) from None

    def read_bytes(self, key: str) -> bytes:
        with self._errors(key):
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def read_parquet(self, key: str) -> pl.DataFrame:
        return pl.read_parquet(io.BytesIO(self.read_bytes(key)))

    def replace_bytes(self, key: str, data: bytes) -> None:
        with self._errors(key):  # a PUT replaces an object whole
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def _exists(self, key: str) -> bool:
        try:
            with self._errors(key):
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except FileNotFoundError:
            return False
        return True

    def write_folder(self, prefix: str, name: str, files: dict[str, Writer], marker: str) -> None:
        folder = f"{prefix}/{name}"
        if self._exists(f"{folder}/{marker}"):
            raise FileExistsError(self.describe(folder))
        for file_name, write in files.items():
            if file_name != marker:
                self._upload(f"{folder}/{file_name}", write)
        # The marker last and only if absent: the folder is complete from this write on, and of
        # two writers of one id, one wins.
        key = f"{folder}/{marker}"
        body = io.BytesIO()
        files[marker](body)
        from botocore.exceptions import ClientError

        with self._errors(key):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=body.getvalue(), IfNoneMatch="*"
                )
            except ClientError as error:
                # (A retried put whose first attempt succeeded lands here too: the snapshot is
                # then complete, and `shopguide publish --snapshot ID` publishes it.)
                if _lost_race(error):
                    raise FileExistsError(self.describe(folder)) from None
                raise

    def _upload(self, key: str, write: Writer) -> None:
        """Through a temporary file and boto3's managed transfer: multipart above 8 MB, so a
        table over a single PUT's 5 GB limit still goes, and memory holds a part at a time."""
        with tempfile.TemporaryFile() as handle, self._errors(key):
            write(handle)
            handle.seek(0)
            self.client.upload_fileobj(handle, self.bucket, self._key(key))

    def _objects(self, prefix: str) -> Iterator[dict]:
        """Every object under `prefix/` (Key relative to the root, LastModified)."""
        full = self._key(prefix).rstrip("/") + "/"
        strip = len(self._key(""))
        with self._errors(prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            for page in pages:
                for item in page.get("Contents", []):
                    yield {"Key": item["Key"][strip:], "LastModified": item["LastModified"]}

    def _folders(self, prefix: str) -> dict[str, list[dict]]:
        """The objects under `prefix/`, grouped by their first-level folder."""
        groups: dict[str, list[dict]] = {}
        for item in self._objects(prefix):
            rest = item["Key"][len(prefix) + 1 :]
            name, slash, _ = rest.partition("/")
            if slash:
                groups.setdefault(name, []).append({**item, "Name": rest[len(name) + 1 :]})
        return groups

    def complete_folders(self, prefix: str, marker: str) -> list[str]:
        return [
            name for name, items in self._folders(prefix).items() if any(i["Name"] == marker for i in items)
        ]

    def folder_time(self, key: str, marker: str) -> float:
        with self._errors(key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(f"{key}/{marker}"))
        return head["LastModified"].timestamp()

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            batch = [{"Key": self._key(key)} for key in keys[start : start + 1000]]
            with self._errors(keys[start]):
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def remove_folder(self, key: str, ignore_errors: bool = False) -> None:
        # Deleting is idempotent on an object store: `ignore_errors` has nothing to ignore.
        keys = [item["Key"] for item in self._objects(key)]
        # The markers first: a removal cut short leaves an incomplete folder (never listed, and
        # swept later), not a complete-looking one with files missing.
        markers = [k for k in keys if k.endswith(".json")]
        self._delete(markers)
        self._delete([k for k in keys if k not in markers])

    def sweep_incomplete(self, prefix: str, marker: str, older_than_s: float) -> list[str]:
        cutoff = time.time() - older_than_s
        removed = []
        for name, items in self._folders(prefix).items():
            if any(i["Name"] == marker for i in items):
                continue
            if max(i["LastModified"].timestamp() for i in items) < cutoff:
                self._delete([i["Key"] for i in items])
                removed.append(name)
        return sorted(removed)

    @contextlib.contextmanager
    def pointer_update(self, key: str) -> Iterator[PointerUpdate]:
        try:
            with self._errors(key):
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
                data, etag = response["Body"].read(), response["ETag"]
        except FileNotFoundError:
            data, etag = None, None
        yield _S3PointerUpdate(self, key, data, etag)

    def append_line(self, key: str, line: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.replace_bytes(
            f"{_history_folder(key)}/{stamp}-{uuid.uuid4().hex[:8]}.json", line.encode() + b"\n"
        )

    def read_lines(self, key: str, limit: int | None = None) -> list[str]:
        keys = sorted(item["Key"] for item in self._objects(_history_folder(key)))
        if limit:
            keys = keys[-limit:]
        # One GET per line: in parallel, as a long history holds thousands (docs/deployment.md).
        with ThreadPoolExecutor(max_workers=HISTORY_READERS) as pool:
            return [body.decode().strip() for body in pool.map(self.read_bytes, keys)]


def _history_folder(key: str) -> str:
    """`history.jsonl` → `history`: one object per line on a store that cannot append."""
    return key.rsplit(".", 1)[0]


class _S3PointerUpdate(PointerUpdate):
    def __init__(self, store: S3Store, key: str, data: bytes | None, etag: str | None):
        super().__init__(data)
        self.store, self.key, self.etag = store, key, etag

    def replace(self, data: bytes) -> None:
        from botocore.exceptions import ClientError

        condition = {"IfMatch": self.etag} if self.etag else {"IfNoneMatch": "*"}
        store = self.store
        with store._errors(self.key):
            try:
                store.client.put_object(Bucket=store.bucket, Key=store._key(self.key), Body=data, **condition)
            except ClientError as error:
                if not _lost_race(error):
                    raise
                if not _already_written(store, self.key, data):
                    raise PointerConflict(
                        f"{store.describe(self.key)} was changed by another publisher since this one read "
                        "it (a concurrent publish, rollback or canary step), so this one left it as it is. "
                        "Run the command again: it starts from the new pointer."
                    ) from None
