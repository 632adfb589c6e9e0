"""Sources in object stores and on web servers: ``s3://``, ``gs://``, ``az://`` (``abfs://``,
``abfss://``) and ``http(s)://``, read with obstore (the Python face of the ``object_store``
crate that Polars itself uses; ``pip install "usagenorm[remote]"``).

A URL names one object, or a prefix whose objects (``*.json``, ``*.jsonl``, ``*.ndjson``, and
``.gz``) are listed like a folder's files, in sorted key order. Objects are downloaded in
parallel; each keeps its full URL as its source name. Credentials come from the standard
environment variables (``AWS_ACCESS_KEY_ID``, ``GOOGLE_APPLICATION_CREDENTIALS``,
``AZURE_STORAGE_ACCOUNT_NAME``, ...) or from ``storage_options``, with Polars' keys
(``aws_access_key_id``, ``aws_region``, ``aws_endpoint_url``, ``allow_http``, ...).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "azure", "http", "https")
#: Downloads at once (each releases the GIL while it waits).
PARALLEL = 16


def is_url(text: str) -> bool:
    scheme = urlsplit(text).scheme.lower()
    return "://" in text and scheme in SCHEMES


def _obstore() -> Any:
    try:
        import obstore
    except ImportError:
        raise ImportError(
            'reading s3://, gs://, az:// or http(s):// sources needs obstore: pip install "usagenorm[remote]"'
        ) from None
    return obstore


# Polars' spellings of keys obstore's stores take under other names.
_RENAMED = {"aws_endpoint_url": "aws_endpoint", "endpoint_url": "aws_endpoint", "aws_default_region": "aws_region"}
# Keys of the HTTP client rather than of the store.
_CLIENT_KEYS = {"allow_http", "aws_allow_http", "timeout", "connect_timeout", "allow_invalid_certificates"}


def _config(options: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``storage_options`` split into the store's configuration and the client's."""
    config: dict[str, Any] = {}
    client: dict[str, Any] = {}
    for key, value in (options or {}).items():
        k = key.lower()
        if k in _CLIENT_KEYS:
            name = k.removeprefix("aws_")
            flag = name in ("allow_http", "allow_invalid_certificates")
            client[name] = str(value).lower() in ("true", "1") if flag else value
        else:
            config[_RENAMED.get(k, k)] = value
    return config, client


def _store(url: str, options: Mapping[str, Any] | None) -> tuple[Any, str, str]:
    """The store holding ``url``, the key (path) within it, and the URL of its root."""
    from obstore.store import HTTPStore, from_url

    scheme = urlsplit(url).scheme.lower()
    config, client = _config(options)
    root = _root(url)
    store: Any
    make: Any = from_url
    try:
        if scheme in ("http", "https"):
            if config:
                raise ValueError(f"storage_options: {sorted(config)} do not apply to {scheme}:// sources")
            make = HTTPStore.from_url
            store = make(root, client_options=client or None)
        else:
            store = make(root, config=config or None, client_options=client or None)
    except ValueError:
        raise
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"storage_options for {root}: {first}") from None
    return store, _key(url), root


def _named(url: str, error: BaseException) -> OSError:
    """An obstore error as the Python error a local file would give, naming the URL."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if _not_found(error):
        return FileNotFoundError(f"{url}: no such object ({first})")
    if _denied(error):
        return PermissionError(f"{url}: access denied ({first})")
    return OSError(f"{url}: could not be read: {first}")


def _not_found(error: BaseException) -> bool:
    from obstore.exceptions import NotFoundError

    return isinstance(error, NotFoundError | FileNotFoundError) or "404 Not Found" in str(error)


def _denied(error: BaseException) -> bool:
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    denied = ("401 Unauthorized", "403 Forbidden")
    return isinstance(error, PermissionDeniedError | UnauthenticatedError | PermissionError) or any(
        d in str(error) for d in denied
    )


#: Object sizes seen when listing (``scan`` groups objects by size before downloading them).
SIZES: dict[str, int] = {}


def expand(url: str, options: Mapping[str, Any] | None, extensions: tuple[str, ...]) -> list[str]:
    """The object URLs ``url`` names: itself when it is an object, else the objects below it
    (as a folder), sorted by key."""
    obstore = _obstore()
    store, key, root = _store(url, options)
    if urlsplit(url).scheme.lower() in ("http", "https") and (not key or key.endswith("/")):
        raise ValueError(f"{url}: an http(s) source names one object; a web server's folders cannot be listed")
    if key and not key.endswith("/"):
        try:
            SIZES[url] = int(obstore.head(store, key)["size"])
            return [url]
        except Exception as e:  # noqa: BLE001 - obstore's errors, mapped by kind
            if not _not_found(e) or urlsplit(url).scheme.lower() in ("http", "https"):
                raise _named(url, e) from None
    prefix = key.rstrip("/") + "/" if key else None
    try:
        found = [m for batch in obstore.list(store, prefix=prefix) for m in batch]
    except Exception as e:  # noqa: BLE001
        raise _named(url, e) from None
    keys = sorted(m["path"] for m in found if m["path"].lower().endswith(extensions))
    if not keys:
        raise FileNotFoundError(f"{url}: no such object, and no *.json, *.jsonl or *.ndjson objects (or .gz) below it")
    SIZES.update((root + m["path"], int(m["size"])) for m in found)
    return [root + k for k in keys]


def download(urls: list[str], options: Mapping[str, Any] | None) -> list[tuple[str, bytes]]:
    """Every object's bytes, fetched in parallel (one client per bucket or server), in the
    order given."""
    obstore = _obstore()
    stores: dict[str, Any] = {}
    keys: list[tuple[Any, str]] = []
    for url in urls:
        root = _root(url)
        if root not in stores:
            stores[root] = _store(url, options)[0]
        keys.append((stores[root], _key(url)))

    def one(at: int) -> tuple[str, bytes]:
        store, key = keys[at]
        try:
            return urls[at], bytes(obstore.get(store, key).bytes())
        except Exception as e:  # noqa: BLE001
            raise _named(urls[at], e) from None

    if len(urls) <= 1:
        return [one(i) for i in range(len(urls))]
    with concurrent.futures.ThreadPoolExecutor(min(PARALLEL, len(urls))) as pool:
        return list(pool.map(one, range(len(urls))))


def _root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def _key(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def upload(url: str, data: bytes, options: Mapping[str, Any] | None) -> None:
    """Writes ``data`` as the object ``url`` (one request: whole or not at all)."""
    obstore = _obstore()
    store, key, _ = _store(url, options)
    try:
        obstore.put(store, key, data)
    except Exception as e:  # noqa: BLE001
        raise _named(url, e) from None
