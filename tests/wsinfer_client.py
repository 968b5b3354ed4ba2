"""The real WSInfer client, run offline: what the round trip and the benchmark share.

WSInfer (``pip install wsinfer``) needs PyPI's torch and torchvision, whose
torchvision wheels do not load with the CPU torch pin of the project's venv, so it
lives in a venv of its own: ``.ci/run`` makes it at ``<repo>/.venv-wsinfer``, and
the environment variable ``IDC_SKLEARN_WSINFER`` names another ``wsinfer``
executable. Its command line reads the model zoo's registry from the internet when
it is imported; an empty registry in a home folder of its own, with the hub
offline, lets it run without a network and without touching the user's home.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import REPO_ROOT

WSINFER_ENV = "IDC_SKLEARN_WSINFER"
WSINFER_VENV = REPO_ROOT / ".venv-wsinfer"
# The pins that .ci/run installs; the test names them where the client is absent.
WSINFER_INSTALL = (
    "python3 -m venv .venv-wsinfer && .venv-wsinfer/bin/pip install torch==2.14.1 "
    "torchvision==0.29.1 wsinfer==0.6.1 'zarr<3' openslide-python openslide-bin"
)


def wsinfer_executable() -> Path | None:
    """The ``wsinfer`` to run: ``$IDC_SKLEARN_WSINFER``, else the repo's venv's."""
    named = os.environ.get(WSINFER_ENV)
    path = Path(named) if named else WSINFER_VENV / "bin" / "wsinfer"
    return path if path.is_file() else None


def offline_env(home: Path) -> dict:
    """The environment of an offline run: ``home`` holds an empty model registry."""
    registry = home / ".wsinfer-zoo" / "wsinfer-zoo-registry.json"
    registry.parent.mkdir(parents=True, exist_ok=True)
    registry.write_text(json.dumps({"models": {}}))
    # wsinfer_zoo finds the registry under Path.home(), which reads HOME; the CPU
    # is forced so the probabilities are the CPU's wherever a GPU is present.
    return {
        **os.environ,
        "HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "WSINFER_FORCE_CPU": "1",
    }


def run_wsinfer(
    executable: Path,
    slides: Path,
    model: Path,
    results: Path,
    *,
    home: Path,
    options: tuple[str, ...] = (),
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """``wsinfer run`` of the exported ``model`` directory over the folder ``slides``.

    Raises RuntimeError, with the end of its output, where it fails.
    """
    command = [
        str(executable),
        "run",
        "--wsi-dir",
        str(slides),
        "--results-dir",
        str(results),
        "--config",
        str(model / "config.json"),
        "--model-path",
        str(model / "torchscript_model.pt"),
        *options,
    ]
    done = subprocess.run(
        command,
        env=offline_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {done.returncode}:\n"
            f"{(done.stdout + done.stderr)[-4000:]}"
        )
    return done


def validate_config(executable: Path, config: Path, *, home: Path) -> None:
    """Validate ``config`` with wsinfer_zoo's own schema and parser, in its venv."""
    python = executable.parent / "python"
    code = (
        "import json, sys\n"
        "from wsinfer_zoo.client import ModelConfiguration\n"
        "ModelConfiguration.from_dict(json.load(open(sys.argv[1])))\n"
    )
    done = subprocess.run(
        [str(python), "-c", code, str(config)],
        env=offline_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{config} is not a valid model config:\n{done.stderr}")
