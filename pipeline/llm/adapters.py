"""LoRA adapter files: save one on its own (a few MB) and hash it.

An adapter's hash plus the base model's hash identifies a tuned model in a manifest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from peft import PeftModel

from embeddings_store.atomic import atomic_dir


def adapter_hash(folder: Path) -> str:
    """sha256 over a saved adapter's weights and its config, with the machine-specific base
    model path left out of the config so the same adapter hashes alike everywhere."""
    folder = Path(folder)
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        if path.name == "adapter_config.json":
            cfg = json.loads(path.read_text())
            for key in ("base_model_name_or_path", "revision"):
                cfg.pop(key, None)
            data = json.dumps(cfg, sort_keys=True).encode()
        elif path.suffix in (".safetensors", ".bin"):
            data = path.read_bytes()
        else:
            continue  # README and the like do not change the adapter
        h.update(f"{path.name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()


def save_adapter(model: PeftModel, folder: Path) -> str:
    """Save only the adapter into `folder` (written aside, then renamed); returns its hash."""
    with atomic_dir(folder, replace=True) as tmp:
        model.save_pretrained(tmp)
    return adapter_hash(Path(folder))
