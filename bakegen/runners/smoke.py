"""Smoke checks of built images with testcontainers.

Every container started here carries the label org.bakegen.smoke.session=<run id>, and
the run ends by removing every container with that label, whatever happened: success,
failure, timeout or Ctrl-C. testcontainers' reaper (Ryuk) is not needed for that, and its
image cannot be pulled on machines without registry access, so it is turned off.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

from bakegen.errors import EngineError
from bakegen.model import SmokeCheck
from bakegen.template import resolve

SESSION_LABEL = "org.bakegen.smoke.session"
Result = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class ImageChecks:
    """What to check: a target (as reports name it), its local image, and its checks."""

    target: str
    image: str  # an image ID, a tag, or REPO@DIGEST
    checks: tuple[SmokeCheck, ...]
    platform: str = ""  # what the build produced; filled from the image when empty


@dataclass(frozen=True)
class SmokeCase:
    target: str
    image: str
    check: SmokeCheck
    platform: str = ""


@dataclass(frozen=True)
class CaseOutcome:
    case: SmokeCase
    result: Result
    seconds: float
    message: str = ""
    details: str = ""


class _Interrupted(Exception):
    """The run is being stopped; a worker that sees this must not start anything new."""


class SmokeSession:
    """One `bakegen smoke` run: its containers, and the promise to remove them all."""

    def __init__(self, values: dict[str, str], gpus: str | None = None) -> None:
        os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
        from testcontainers.core.docker_client import DockerClient

        self.id = uuid.uuid4().hex[:12]
        self.values = values
        self.gpus = gpus
        with engine_faults("docker"):
            self.client = DockerClient().client
        self.stopping = threading.Event()

    # -- lifecycle --

    def cleanup(self) -> int:
        """Force-remove every container of this session; returns how many there were."""
        # The low-level list: the high-level one inspects each container, and a worker may remove one
        # in between (a 404 that would end an interrupted run with exit 1 instead of 130).
        with engine_faults("docker ps"):
            containers = self.client.api.containers(all=True, quiet=True, filters={"label": f"{SESSION_LABEL}={self.id}"})
        for container in containers:
            with contextlib.suppress(Exception):  # already gone: removed by its worker meanwhile
                self.client.api.remove_container(container["Id"], force=True, v=True)
        return len(containers)

    def run_all(
        self,
        cases: list[SmokeCase],
        jobs: int,
        report: Callable[[CaseOutcome], None],
        stop_when: Callable[[CaseOutcome], bool] | None = None,
    ) -> list[CaseOutcome]:
        """Run the cases, `jobs` at a time; after an outcome for which `stop_when` is true (-x), no new case starts."""
        outcomes: list[CaseOutcome] = []
        todo: queue.SimpleQueue[SmokeCase] = queue.SimpleQueue()
        done: queue.SimpleQueue[CaseOutcome] = queue.SimpleQueue()
        for case in cases:
            todo.put(case)

        def worker() -> None:
            while not self.stopping.is_set():
                try:
                    case = todo.get_nowait()
                except queue.Empty:
                    return
                outcome = self.run_case(case)
                if stop_when is not None and stop_when(outcome):
                    self.stopping.set()  # before the next get: no worker takes another case
                done.put(outcome)

        # Daemon threads, not a ThreadPoolExecutor: the interpreter joins an executor's threads at exit,
        # so a worker blocked in a docker call would hold an interrupted run for as long as the call lasts.
        workers = [threading.Thread(target=worker, name=f"smoke-{i}", daemon=True) for i in range(max(1, min(jobs, len(cases))))]
        try:
            for thread in workers:
                thread.start()
            while len(outcomes) < len(cases):
                try:
                    outcome = done.get(timeout=0.2)
                except queue.Empty:
                    if not any(t.is_alive() for t in workers) and done.empty():
                        break
                    continue
                outcomes.append(outcome)
                report(outcome)
        finally:
            self.stopping.set()
            self.cleanup()
            # A worker may be inside a docker call that creates a container right now: give the workers
            # a moment to see `stopping` (each removes its own container), then sweep again.
            deadline = time.monotonic() + 10
            while any(t.is_alive() for t in workers) and time.monotonic() < deadline:
                time.sleep(0.1)
            self.cleanup()
        order = {id(c): i for i, c in enumerate(cases)}
        return sorted(outcomes, key=lambda o: order[id(o.case)])

    def locate(self, images: Iterable[ImageChecks]) -> tuple[list[ImageChecks], list[str]]:
        """The images with their platform filled in, and the references that are not in the engine.
        A REPO@DIGEST reference is pulled from its registry first (the pushed image is what is checked)."""
        from docker.errors import ImageNotFound

        found: list[ImageChecks] = []
        missing: list[str] = []
        for item in images:
            with engine_faults(f"docker image inspect {item.image}"):
                try:
                    image = self.client.images.get(item.image)
                except ImageNotFound:
                    if "@sha256:" not in item.image:
                        missing.append(item.image)
                        continue
                    image = self.client.images.pull(item.image)
            attrs = image.attrs
            variant = f"/{attrs['Variant']}" if attrs.get("Variant") else ""
            # From here on the checks name the exact image (its ID), whatever happens to the tag meanwhile.
            found.append(
                replace(item, image=str(image.id), platform=item.platform or f"{attrs.get('Os')}/{attrs.get('Architecture')}{variant}")
            )
        return found, missing

    # -- one check --

    def run_case(self, case: SmokeCase) -> CaseOutcome:
        started = time.monotonic()
        check = case.check
        if check.requires_gpu and not self.gpus:
            return CaseOutcome(case, "skip", 0.0, "requires a GPU; run with --gpus all")
        try:
            if self.stopping.is_set():
                raise _Interrupted
            image = self._image(case.image)
            if check.kind in ("env", "label"):
                message, details = self._check_config(image, check)
            elif check.kind == "file":
                message, details = self._check_file(case.image, check)
            elif check.kind == "run":
                message, details = self._check_run(case, check)
            else:
                message, details = self._check_http(case, check)
        except _Interrupted:
            return CaseOutcome(case, "skip", time.monotonic() - started, "interrupted")
        except _ImageMissing as exc:
            message, details = str(exc), ""
        except _StartFailed as exc:
            message, details = f"container did not start: {exc}", ""
        except Exception as exc:  # a docker or network error is this check's failure, not a crash
            message, details = f"{type(exc).__name__}: {_api_error_text(exc)}", ""
        result: Result = "fail" if message else "pass"
        return CaseOutcome(case, result, time.monotonic() - started, message, details)

    def _image(self, reference: str) -> Any:
        from docker.errors import ImageNotFound

        try:
            return self.client.images.get(reference)
        except ImageNotFound:
            raise _ImageMissing(
                f"image {reference} is not in the local engine (build it first: bakegen bake --load); it is never pulled"
            ) from None

    def _check_config(self, image: Any, check: SmokeCheck) -> tuple[str, str]:
        config = image.attrs.get("Config") or {}
        if check.kind == "env":
            actual = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
        else:
            actual = config.get("Labels") or {}
        problems = []
        for key, template in check.expected:
            expected = resolve(template, self.values)
            if actual.get(key) != expected:
                problems.append(f"{check.kind} {key}: expected {expected!r}, got {actual.get(key, '<unset>')!r}")
        return ("; ".join(problems), "") if problems else ("", "")

    def _check_file(self, image: str, check: SmokeCheck) -> tuple[str, str]:
        from docker.errors import NotFound

        container = self.client.containers.create(image, labels={SESSION_LABEL: self.id}, entrypoint=["/"], command=[])
        try:
            container.get_archive(check.file)
        except NotFound:
            return f"{check.file} does not exist in the image", ""
        finally:
            container.remove(force=True)
        return "", ""

    def _container(self, case: SmokeCase, check: SmokeCheck) -> Any:
        from testcontainers.core.container import DockerContainer

        container = DockerContainer(case.image)
        if check.command:
            container.with_command(list(check.command))
        for key, value in check.environment:
            container.with_env(key, value)
        kwargs: dict[str, Any] = {"labels": {SESSION_LABEL: self.id, "org.bakegen.smoke.target": case.target}}
        if check.entrypoint is not None:
            kwargs["entrypoint"] = list(check.entrypoint)
        if self.gpus:
            from docker.types import DeviceRequest

            count = -1 if self.gpus == "all" else int(self.gpus)
            kwargs["device_requests"] = [DeviceRequest(count=count, capabilities=[["gpu"]])]
        if check.kind == "http":
            # Published on loopback only: the check talks to this machine and nothing else.
            # with_bind_ports takes no host address; its ports map goes to docker-py as is.
            container.ports[f"{check.port}/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]
        container.with_kwargs(**kwargs)
        return container

    def _start(self, case: SmokeCase, check: SmokeCheck) -> Any:
        from docker.errors import APIError

        if self.stopping.is_set():
            raise _Interrupted
        container = self._container(case, check)
        try:
            container.start()
        except APIError as exc:
            container.stop()
            raise _StartFailed(_api_error_text(exc)) from None
        if self.stopping.is_set():
            container.stop()
            raise _Interrupted
        return container

    @contextlib.contextmanager
    def _running(self, case: SmokeCase, check: SmokeCheck) -> Iterator[Any]:
        container = self._start(case, check)
        try:
            yield container
        finally:
            container.stop()

    def _check_run(self, case: SmokeCase, check: SmokeCheck) -> tuple[str, str]:
        with self._running(case, check) as container:
            wrapped = container.get_wrapped_container()
            try:
                status = wrapped.wait(timeout=check.timeout)
            except Exception:  # requests' ReadTimeout: still running
                return f"did not exit within {check.timeout:g}s", _tail(_logs(container))
            stdout, stderr = container.get_logs()
            out, err = stdout.decode(errors="replace"), stderr.decode(errors="replace")
            problems = []
            if status.get("StatusCode") != check.exit_code:
                problems.append(f"exit code: expected {check.exit_code}, got {status.get('StatusCode')}")
            for name, pattern, text in (("stdout", check.stdout, out), ("stderr", check.stderr, err)):
                if pattern is not None and not re.search(pattern, text, re.MULTILINE):
                    problems.append(f"{name}: expected a match for /{pattern}/, got {_quote(text)}")
            return ("; ".join(problems), _tail(out + err)) if problems else ("", "")

    def _check_http(self, case: SmokeCase, check: SmokeCheck) -> tuple[str, str]:
        with self._running(case, check) as container:
            port = container.get_exposed_port(check.port)
            url = f"http://127.0.0.1:{port}{check.http_path}"
            deadline = time.monotonic() + check.timeout
            last = "no answer"
            while time.monotonic() < deadline:
                if self.stopping.is_set():
                    raise _Interrupted
                wrapped = container.get_wrapped_container()
                wrapped.reload()
                if wrapped.status in ("exited", "dead"):
                    code = wrapped.attrs.get("State", {}).get("ExitCode")
                    return f"container exited (code {code}) before {url} answered", _tail(_logs(container))
                status, body = _get(url)
                if status == check.status and (check.body is None or re.search(check.body, body)):
                    return "", ""
                last = f"HTTP {status}" + (f", body {_quote(body)}" if status else "")
                time.sleep(0.25)
            return (
                f"GET {check.http_path} did not answer {check.status}" + (f" with /{check.body}/" if check.body else "")
                + f" within {check.timeout:g}s (last: {last})",
                _tail(_logs(container)),
            )  # fmt: skip


class _ImageMissing(Exception):
    pass


class _StartFailed(Exception):
    pass


def _api_error_text(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status), response.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(4096).decode(errors="replace")
    except (OSError, ValueError):
        return 0, ""


def _logs(container: Any) -> str:
    try:
        stdout, stderr = container.get_logs()
        return str(stdout.decode(errors="replace") + stderr.decode(errors="replace"))
    except Exception:
        return ""


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _quote(text: str, limit: int = 160) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


def cases_for(images: Iterable[ImageChecks]) -> list[SmokeCase]:
    return [SmokeCase(item.target, item.image, check, item.platform) for item in images for check in item.checks]


@contextlib.contextmanager
def engine_faults(what: str) -> Iterator[None]:
    """docker-py's and requests' errors (no engine, engine gone) become one EngineError line."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        yield
    except (DockerException, RequestException) as exc:
        raise EngineError(f"{what}: {_api_error_text(exc).splitlines()[-1] if str(exc).strip() else type(exc).__name__}") from None
