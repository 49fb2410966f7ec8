"""PEGS checkpoints: only what was trained, versioned, switchable without a restart.

    <root>/CURRENT                    the active version's name (replaced atomically)
    <root>/<version>/adapter_model.safetensors   LoRA and/or the [IMG] rows (peft)
    <root>/<version>/adapter_config.json         peft LoraConfig (token indices included)
    <root>/<version>/heads.safetensors           Q-Former, queries, projection, W_t, W_i,
                                                 logit scale, feature mapper (those held)
    <root>/<version>/pegs_config.json            PegsConfig + version + meta + tokens +
                                                 the categories held + the base version

The frozen backbones (LLM, vision encoder) never go in: a checkpoint loads onto them. A
training stage saves only the parts it trained and names the version it started from
(`base`); loading applies the chain base first.
A version is written beside its final place and renamed, so readers never see half of one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from engine.pegs.config import PegsConfig
from engine.pegs.model import CATEGORIES, PegsModel, load_llm

CONFIG_FILE = "pegs_config.json"
HEADS_FILE = "heads.safetensors"
ADAPTER_FILE = "adapter_model.safetensors"
CURRENT_FILE = "CURRENT"
# Where the default `cpu-small` checkpoint is committed (trained by `stickerbot train`).
DEFAULT_ROOT = Path(__file__).with_name("checkpoints") / "cpu-small"
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Fields that may differ between a checkpoint and the model it is swapped into.
_NON_STRUCTURAL = {"lambda_lm", "lambda_gen", "lambda_ret", "profile", "sd_path",
                   "llm_cache_dir", "max_images"}


def _check_version(version: str) -> str:
    if not _VERSION.match(version) or ".." in version:
        raise ValueError(f"bad checkpoint version {version!r}: letters, digits, '.', '_', '-'")
    return version


def _by_category(model: PegsModel, categories: Collection[str]) -> set[str]:
    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown parameter categories {unknown}; choose from {CATEGORIES}")
    groups = model.parameter_categories()
    return {name for c in categories for name in groups[c]}


def heads_state_dict(model: PegsModel,
                     categories: Collection[str] = CATEGORIES) -> dict[str, torch.Tensor]:
    """The trained tensors outside the LLM (the LLM's go through peft)."""
    wanted = _by_category(model, categories)
    return {name: p.detach().contiguous() for name, p in model.named_parameters()
            if name in wanted and not name.startswith("llm.")}


def adapter_state_dict(model: PegsModel,
                       categories: Collection[str] = CATEGORIES) -> dict[str, torch.Tensor]:
    """LoRA and/or the [IMG] rows, as peft names them in an adapter file."""
    from peft import get_peft_model_state_dict

    # save_embedding_layers=False: peft would otherwise store the whole resized embedding
    # matrix; trainable_token_indices already puts the [IMG] rows in the adapter.
    state = get_peft_model_state_dict(model.llm, save_embedding_layers=False)
    keep = {"lora": "lora_", "img_rows": "trainable_tokens"}
    marks = [mark for c, mark in keep.items() if c in categories]
    return {k: v.detach().contiguous() for k, v in state.items()
            if any(mark in k for mark in marks)}


def save_checkpoint(model: PegsModel, root: str | Path, version: str,
                    meta: dict[str, Any] | None = None, *, activate: bool = True,
                    overwrite: bool = False, categories: Collection[str] = CATEGORIES,
                    base: str | None = None) -> Path:
    """Write `<root>/<version>/` and (by default) make it the CURRENT one.

    `categories` names what this version holds (a training stage saves only what it
    trained); `base` names the version in the same root it was trained on top of, which
    loading applies first."""
    root = Path(root)
    target = root / _check_version(version)
    if target.exists() and not overwrite:
        raise FileExistsError(f"checkpoint {target} exists (pass overwrite=True to replace it)")
    if base is not None and not (root / _check_version(base) / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"base checkpoint {root / base} not found")
    categories = sorted(set(categories))
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{version}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    adapter = adapter_state_dict(model, categories)
    if adapter:
        save_file(adapter, str(staging / ADAPTER_FILE), metadata={"format": "pt"})
        model.llm.peft_config["default"].save_pretrained(str(staging))
    heads = heads_state_dict(model, categories)
    if heads:
        save_file(heads, str(staging / HEADS_FILE), metadata={"format": "pt"})
    info = {
        "version": version,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": model.config.to_dict(),
        "meta": meta or {},
        "categories": categories,
        "base": base,
        "tokens": {"image_token": model.config.image_token,
                   "img_tokens": model.config.img_tokens,
                   "image_token_id": model.image_token_id,
                   "img_token_ids": model.img_token_ids},
        "trainable": {k: len(v) for k, v in model.parameter_categories().items()},
    }
    (staging / CONFIG_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    if activate:
        set_current(root, version)
    return target


def chain(folder: str | Path) -> list[Path]:
    """A version and the versions it was trained on top of, base first."""
    folders = [Path(folder)]
    while (base := read_info(folders[0]).get("base")) is not None:
        parent = folders[0].parent / _check_version(base)
        if parent in folders:
            raise ValueError(f"checkpoint {folder}: its bases form a cycle")
        folders.insert(0, parent)
    return folders


def read_info(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no PEGS checkpoint at {folder} ({CONFIG_FILE} missing)")
    return json.loads(path.read_text(encoding="utf-8"))


def resolve(path: str | Path) -> Path:
    """A version folder, or a root whose CURRENT (else newest) version is taken."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return path
    version = latest_version(path)
    if version is None:
        raise FileNotFoundError(f"no PEGS checkpoint under {path}")
    return path / version


def load_checkpoint(path: str | Path, llm: torch.nn.Module | None = None, tokenizer: Any = None,
                    vision: torch.nn.Module | None = None, *,
                    overrides: dict[str, Any] | None = None) -> PegsModel:
    """A PegsModel on frozen backbones (built from the saved config when not given) with
    the checkpoint's trained weights, in eval mode. `llm` must be a plain (unwrapped)
    model: to switch versions on a model in memory use `load_weights`. `overrides`
    replaces settings that do not change the structure (cache dir, SD path, ...)."""
    folder = resolve(path)
    config = PegsConfig.from_dict(read_info(folder)["config"])
    if overrides:
        structural = sorted(set(overrides) - _NON_STRUCTURAL)
        if structural:
            raise ValueError(f"{structural} are fixed by the checkpoint; only "
                             f"{sorted(_NON_STRUCTURAL)} may be overridden")
        config = replace(config, **overrides)
    if llm is None:
        llm, tokenizer = load_llm(config)
    elif tokenizer is None:
        raise ValueError("pass the tokenizer that goes with llm")
    model = PegsModel(config, llm, tokenizer, vision)
    return load_weights(model, folder).eval()


def load_weights(model: PegsModel, path: str | Path) -> PegsModel:
    """Swap a checkpoint's trained weights into `model` in place (same structure): its
    bases first, then the version itself. Parts no version of the chain holds keep the
    values they had; `model.trained_categories` says which parts the chain trained."""
    folder = resolve(path)
    folders = chain(folder)
    trained: set[str] = set()
    for part in folders:
        trained |= _load_one(model, part)
    info = read_info(folder)
    model.checkpoint_version = info["version"]
    model.checkpoint_meta = info.get("meta", {})
    model.trained_categories = sorted(trained)
    return model


def _load_one(model: PegsModel, folder: Path) -> set[str]:
    from peft import set_peft_model_state_dict

    info = read_info(folder)
    saved = PegsConfig.from_dict(info["config"]).to_dict()
    ours = model.config.to_dict()
    differ = sorted(k for k in saved if k not in _NON_STRUCTURAL and saved[k] != ours[k])
    if differ:
        raise ValueError(f"checkpoint {folder} was trained with other settings: {differ}")
    ids = info["tokens"]["img_token_ids"], info["tokens"]["image_token_id"]
    if ids != (model.img_token_ids, model.image_token_id):
        raise ValueError(f"checkpoint {folder}: [IMG] token ids {ids} differ from the "
                         f"tokenizer's {(model.img_token_ids, model.image_token_id)}")
    categories = info.get("categories", list(CATEGORIES))
    if (folder / ADAPTER_FILE).is_file():
        result = set_peft_model_state_dict(model.llm, load_file(str(folder / ADAPTER_FILE)))
        if result.unexpected_keys:
            raise ValueError(f"{folder / ADAPTER_FILE}: unexpected keys "
                             f"{result.unexpected_keys[:5]}")
    heads = load_file(str(folder / HEADS_FILE)) if (folder / HEADS_FILE).is_file() else {}
    absent = sorted(set(heads_state_dict(model, categories)) - set(heads))
    _, unexpected = model.load_state_dict(heads, strict=False)
    if absent or unexpected:
        raise ValueError(f"{folder / HEADS_FILE}: missing {absent[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return set(categories)


# --- versions ------------------------------------------------------------------------------
def list_versions(root: str | Path) -> list[str]:
    """Complete versions under root, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir()
             if p.is_dir() and not p.name.startswith(".") and (p / CONFIG_FILE).is_file()]
    return [p.name for p in sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))]


def set_current(root: str | Path, version: str) -> None:
    """Point CURRENT at a version (an atomic replace: readers see the old or the new)."""
    root = Path(root)
    if not (root / _check_version(version) / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"no checkpoint {root / version}")
    temp = root / f".{CURRENT_FILE}.{os.getpid()}.tmp"
    temp.write_text(version + "\n", encoding="utf-8")
    os.replace(temp, root / CURRENT_FILE)


def latest_version(root: str | Path) -> str | None:
    """The version CURRENT names; without CURRENT, the newest complete one; else None."""
    root = Path(root)
    try:
        name = (root / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        versions = list_versions(root)
        return versions[-1] if versions else None
    if not (root / _check_version(name) / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{root / CURRENT_FILE} names {name!r}, which is not there")
    return name


class CheckpointWatcher:
    """Polls a checkpoint root so a worker can switch versions without restarting:

        watcher = CheckpointWatcher(root)
        ...
        if watcher.changed():
            load_weights(model, watcher.path)
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.version = latest_version(self.root)

    @property
    def path(self) -> Path | None:
        return None if self.version is None else self.root / self.version

    def changed(self) -> bool:
        """True once each time the active version differs from the one last seen."""
        version = latest_version(self.root)
        if version == self.version:
            return False
        self.version = version
        return True
