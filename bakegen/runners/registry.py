"""Push a local image to a registry by digest, with no tag: what the docker driver cannot do itself.

BuildKit's `push-by-digest=true` output needs a docker-container (or remote) builder. With the
docker driver bakegen loads the image, checks it, and then uploads exactly that image here:
`docker save` gives its config and layers, the layers are gzipped (mtime 0, so the same image
gives the same digest), and the blobs and an OCI manifest go up through the registry's HTTP API.
The image that was tested is the image that is pushed: same config, same layers.

Only registries that accept anonymous pushes are supported on this path (a local or CI-internal
registry); anything else is an EngineError that says to use a docker-container builder.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bakegen.errors import EngineError

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join(
    [
        INDEX_TYPE,
        MANIFEST_TYPE,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def split_repository(repository: str) -> tuple[str, str]:
    """(registry API base URL, repository path): localhost:5000/app -> (http://localhost:5000, app)."""
    host, _, name = repository.partition("/")
    if not name or not ("." in host or ":" in host or host == "localhost"):
        host, name = "registry-1.docker.io", repository if "/" in repository else f"library/{repository}"
    plain = host.split(":")[0] in ("localhost", "127.0.0.1", "::1")
    return f"{'http' if plain else 'https'}://{host}", name


def push_by_digest(image_id: str, repository: str, annotations: dict[str, str] | None = None) -> str:
    """Upload the local image `image_id` into `repository` untagged; returns the manifest digest."""
    base, name = split_repository(repository)
    work = Path(tempfile.mkdtemp(prefix="bakegen-push-"))
    try:
        archive = work / "image.tar"
        with archive.open("wb") as out:
            saved = subprocess.run(["docker", "save", image_id], stdout=out, stderr=subprocess.PIPE, text=False, check=False)
        if saved.returncode != 0:
            raise EngineError(f"docker save {image_id}: {saved.stderr.decode(errors='replace').strip()}")
        with tarfile.open(archive) as tar:
            tar.extractall(work / "image", filter="data")
        [entry] = json.loads((work / "image" / "manifest.json").read_text())
        config = (work / "image" / entry["Config"]).read_bytes()
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": _upload(base, name, config, "application/vnd.oci.image.config.v1+json"),
            "layers": [_upload_layer(base, name, work / "image" / layer) for layer in entry["Layers"]],
        }
        if annotations:
            manifest["annotations"] = dict(sorted(annotations.items()))
        body = json.dumps(manifest, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        _request("PUT", f"{base}/v2/{name}/manifests/{digest}", body, {"Content-Type": MANIFEST_TYPE})
        return digest
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:  # a save that is not what docker writes, a full disk
        raise EngineError(f"push {image_id} to {repository}: cannot read the saved image ({exc})") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _NotFound(Exception):
    pass


# Layers this process has compressed and uploaded, by the sha256 of their uncompressed bytes: the images of a
# matrix share their base layers, and compressing a large layer again for every image is most of an upload's
# time. Only (digest, size) is kept, in memory, for one run; a blob the registry lacks is compressed again.
_UPLOADED: dict[str, tuple[str, int]] = {}
GZIP_LEVEL = 6  # zlib's default: level 9 takes about twice as long for a layer a few per cent smaller
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def _upload_layer(base: str, name: str, layer: Path) -> dict[str, Any]:
    """Upload a layer tar gzipped (mtime 0, a fixed level: the same layer always gives the same digest)."""
    content = hashlib.sha256()
    with layer.open("rb") as source:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            content.update(chunk)
    known = _UPLOADED.get(content.hexdigest())
    if known and _exists(base, name, known[0]):
        return {"mediaType": LAYER_TYPE, "digest": known[0], "size": known[1]}
    buffer = io.BytesIO()
    with layer.open("rb") as source, gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=GZIP_LEVEL) as target:
        shutil.copyfileobj(source, target, 1 << 20)
    descriptor = _upload(base, name, buffer.getvalue(), LAYER_TYPE)
    _UPLOADED[content.hexdigest()] = (descriptor["digest"], descriptor["size"])
    return descriptor


def _upload(base: str, name: str, data: bytes, media_type: str) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if not _exists(base, name, digest):
        location = _start_upload(base, name)
        _request("PUT", _with_digest(location, digest), data, {"Content-Type": "application/octet-stream"})
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _exists(base: str, name: str, digest: str) -> bool:
    try:
        _request("HEAD", f"{base}/v2/{name}/blobs/{digest}", None, {})
        return True
    except _NotFound:
        return False


def _start_upload(base: str, name: str) -> str:
    request = urllib.request.Request(f"{base}/v2/{name}/blobs/uploads/", method="POST")
    with _opened(request) as response:
        location = str(response.headers["Location"])
    return location if location.startswith("http") else base + location


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def _request(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> bytes:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    with _opened(request) as response:
        return bytes(response.read())


def _opened(request: urllib.request.Request) -> Any:
    try:
        return urllib.request.urlopen(request, timeout=120)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise _NotFound from None
        if exc.code in (401, 403):
            raise EngineError(
                f"{request.full_url.split('/v2/')[0]}: the registry wants credentials; pushing by digest with the docker driver "
                "supports anonymous registries only: use a docker-container builder (docker buildx create --use)"
            ) from None
        raise EngineError(f"registry: {request.get_method()} {request.full_url}: HTTP {exc.code} {exc.reason}") from None
    except OSError as exc:
        raise EngineError(f"registry: {request.full_url.split('/v2/')[0]}: {getattr(exc, 'reason', exc)}") from None
