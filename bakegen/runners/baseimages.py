"""Identities of base images, and labels of published images, from the local engine and registries.

`resolve_base_images` gives each image reference of a Dockerfile (`bakegen.inputs.base_image_references`)
the identity `bakegen.inputs.inputs_digest` hashes:
- "scratch" for `scratch`, and the digest itself for a reference pinned by digest (`name@sha256:...`,
  content-addressed, so no lookup);
- the image ID for an image in the local engine whose platform is the target's (one `docker image inspect`
  for all references): the docker driver builds from such an image without pulling;
- otherwise the registry's manifest digest for the platform (`docker buildx imagetools inspect`; for an
  index, the entry of the platform), which changes whenever the tag is moved to another image.

`registry_label` reads one label of a published image's config for one platform without pulling it.
Both call the docker CLI through subprocess; every failure is one EngineError line.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bakegen.errors import EngineError

# A registry that does not answer must not hang a build for long.
_REGISTRY_TIMEOUT = 120
# The whole inspect document as one JSON line: no template field that some engine version lacks.
_LOCAL_FORMAT = "{{json .}}"
# An image for arm64 with no variant is v8, for arm v7, for amd64 v1: how registries and engines match them.
_DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7", "amd64": "v1"}


def normalized_platform(os_name: str, architecture: str, variant: str = "") -> tuple[str, str, str]:
    return os_name, architecture, variant or _DEFAULT_VARIANTS.get(architecture, "")


def parse_platform(platform: str) -> tuple[str, str, str]:
    os_name, _, rest = platform.partition("/")
    architecture, _, variant = rest.partition("/")
    return normalized_platform(os_name, architecture, variant)


def resolve_base_images(refs: list[str], platform: str, *, local_engine: bool = True) -> dict[str, str]:
    """Each reference's identity for `platform`: local image ID first, then the registry's manifest digest.
    A reference found nowhere (or not for this platform) raises EngineError. `local_engine=False` for
    builders that cannot see the engine's images (a `docker-container` builder pulls every base image)."""
    unique = list(dict.fromkeys(refs))
    identities: dict[str, str] = {}
    lookups: list[str] = []
    for ref in unique:
        if ref == "scratch":
            identities[ref] = "scratch"
        elif "@" in ref:
            identities[ref] = ref.rsplit("@", 1)[1]
        else:
            lookups.append(ref)
    if local_engine:
        identities.update(local_image_ids(lookups, platform))
    remote = [ref for ref in lookups if ref not in identities]
    if remote:
        with ThreadPoolExecutor(max_workers=min(4, len(remote))) as pool:
            identities.update(zip(remote, pool.map(lambda ref: registry_digest(ref, platform), remote), strict=True))
    return {ref: identities[ref] for ref in unique}


def local_image_ids(refs: Sequence[str], platform: str) -> dict[str, str]:
    """Image IDs of the references the local engine holds for `platform`; others are left out."""
    if not refs:
        return {}
    # One call for all; inspect prints one line per image it found, in argument order.
    result = _docker("image", "inspect", "--format", _LOCAL_FORMAT, *refs)
    lines = result.stdout.splitlines()
    if len(lines) != len(refs):
        # Some are missing, and the output does not say which line is whose: ask one by one.
        lines = []
        for ref in refs:
            single = _docker("image", "inspect", "--format", _LOCAL_FORMAT, ref)
            if single.returncode == 0:
                lines.append(single.stdout.strip())
            elif "no such image" in single.stderr.lower():
                lines.append("")
            else:
                raise EngineError(f"docker image inspect {ref}: {_last_line(single.stderr)}")
    wanted = parse_platform(platform)
    found: dict[str, str] = {}
    for ref, line in zip(refs, lines, strict=True):
        if not line:
            continue
        image = json.loads(line)
        if normalized_platform(image.get("Os", ""), image.get("Architecture", ""), image.get("Variant", "")) == wanted:
            found[ref] = str(image["Id"])
    return found


def registry_digest(ref: str, platform: str) -> str:
    """The digest of the manifest `ref` names for `platform` in its registry."""
    manifest = _imagetools_inspect(ref, "{{json .Manifest}}")
    if manifest is None:
        raise EngineError(f"base image {ref}: not found in the local engine nor in its registry")
    if "manifests" not in manifest:
        return str(manifest["digest"])  # one image, not an index: that image, whatever its platform
    digest = pick_manifest(manifest["manifests"], platform)
    if digest is None:
        offered = sorted({_platform_text(entry.get("platform", {})) for entry in manifest["manifests"]} - {"unknown/unknown"})
        raise EngineError(f"base image {ref} has no {platform} image (it has: {', '.join(offered) or 'none'})")
    return digest


def pick_manifest(entries: Sequence[Mapping[str, Any]], platform: str) -> str | None:
    """The digest of an index's entry for `platform` (arm64 = arm64/v8); attestations never match."""
    wanted = parse_platform(platform)
    for entry in entries:
        described = entry.get("platform") or {}
        if normalized_platform(described.get("os", ""), described.get("architecture", ""), described.get("variant", "")) == wanted:
            return str(entry["digest"])
    return None


def registry_label(repository: str, tag: str, platform: str, label: str) -> str | None:
    """The value of `label` in the config of the image `repository:tag` for `platform`, read from the
    registry without pulling. None when the tag does not exist, has no image for the platform, or that
    image has no such label; EngineError when the registry cannot be asked."""
    image = _imagetools_inspect(f"{repository}:{tag}", "{{json .Image}}")
    if image is None:
        return None
    if "architecture" in image or "rootfs" in image:
        # One image, not an index: buildx prints its config itself.
        config: Mapping[str, Any] | None = image
        if normalized_platform(image.get("os", ""), image.get("architecture", ""), image.get("variant", "")) != parse_platform(platform):
            config = None
    else:
        # An index: buildx prints {"linux/amd64": config, "linux/arm/v7": config, ...}.
        wanted = parse_platform(platform)
        config = next((value for key, value in image.items() if parse_platform(key) == wanted), None)
    if not config:
        return None
    labels = (config.get("config") or {}).get("Labels") or {}
    value = labels.get(label)
    return None if value is None else str(value)


@dataclass(frozen=True)
class PublishedImage:
    """One platform's image under a published tag, as the registry holds it."""

    platform: str  # as the index names it: linux/arm64/v8 stays so
    digest: str  # the platform's manifest digest (for a tag that is one manifest, not an index: that manifest's)
    index_digest: str  # what the tag points to
    labels: Mapping[str, str]


def published_images(repository: str, tag: str) -> dict[tuple[str, str, str], PublishedImage]:
    """The images `repository:tag` holds, by normalized platform (`parse_platform`), from one registry query
    (manifest and configs, no layers pulled). Empty when the tag does not exist; EngineError when the
    registry cannot be asked."""
    answer = _imagetools_inspect(f"{repository}:{tag}", "{{json .}}")
    if answer is None:
        return {}
    manifest: Mapping[str, Any] = answer.get("manifest") or {}
    image: Mapping[str, Any] = answer.get("image") or {}
    index_digest = str(manifest.get("digest", ""))
    # One config when the tag holds one image (or an index of one), else {"linux/amd64": config, ...}.
    single = "architecture" in image or "rootfs" in image
    configs = {_platform_text(image): image} if single else dict(image)
    entries = manifest.get("manifests")
    if entries is None:  # one manifest, not an index
        entries = [{"digest": index_digest, "platform": {k: image.get(k) for k in ("os", "architecture", "variant") if image.get(k)}}]
    found: dict[tuple[str, str, str], PublishedImage] = {}
    for entry in entries:
        described = entry.get("platform") or {}
        if described.get("os") in (None, "unknown"):
            continue  # an attestation manifest
        key = normalized_platform(described.get("os", ""), described.get("architecture", ""), described.get("variant", ""))
        config = next((value for name, value in configs.items() if parse_platform(name) == key), None) or {}
        labels = (config.get("config") or {}).get("Labels") or {}
        found[key] = PublishedImage(
            _platform_text(described), str(entry["digest"]), index_digest, {str(k): str(v) for k, v in labels.items()}
        )
    return found


def _imagetools_inspect(ref: str, template: str) -> dict[str, Any] | None:
    """`docker buildx imagetools inspect --format TEMPLATE REF` as JSON; None when the registry says the
    reference does not exist."""
    result = _docker("buildx", "imagetools", "inspect", "--format", template, ref, timeout=_REGISTRY_TIMEOUT)
    if result.returncode != 0:
        problem = _last_line(result.stderr)
        if problem.lower().endswith(": not found") or problem.lower().endswith("manifest unknown"):
            return None
        raise EngineError(f"docker buildx imagetools inspect {ref}: {problem}")
    try:
        answer = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise EngineError(f"docker buildx imagetools inspect {ref}: unreadable answer {result.stdout[:80]!r}") from None
    if not isinstance(answer, dict):
        raise EngineError(f"docker buildx imagetools inspect {ref}: unexpected answer {result.stdout[:80]!r}")
    return answer


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise EngineError("docker: the docker CLI is not installed (not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise EngineError(f"docker {' '.join(args[:3])}: no answer within {timeout:.0f} s") from None


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1].removeprefix("ERROR: ").removeprefix("Error: ") if lines else "failed"


def _platform_text(described: Mapping[str, Any]) -> str:
    variant = described.get("variant")
    return f"{described.get('os', 'unknown')}/{described.get('architecture', 'unknown')}" + (f"/{variant}" if variant else "")
