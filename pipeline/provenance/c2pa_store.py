"""C2PA manifests through ``c2pa-python``, offline: no remote manifest, no OCSP fetch.

``c2pa_state`` is the SDK's verdict (``valid``: content and signature intact, ``trusted``:
the signer chains to a configured trust anchor, ``invalid``), or ``absent`` /
``remote_only`` (the store is announced at a URL, which is not fetched). A manifest's claims
count unless its failures show altered content or signature (:func:`voids`); an untrusted or
expired signing credential is recorded but does not void them.
"""

from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.provenance.signals import Signal, declares_for, source_type_name

ABSENT, REMOTE_ONLY, VALID, TRUSTED, INVALID = (
    "absent",
    "remote_only",
    "valid",
    "trusted",
    "invalid",
)
C2PA_STATES = (ABSENT, REMOTE_ONLY, VALID, TRUSTED, INVALID)
TRAINING_LABELS = ("cawg.training-mining", "c2pa.training-mining")
TRAINING_KEYS = frozenset(
    {"cawg.ai_generative_training", "cawg.ai_training", "c2pa.ai_generative_training",
     "c2pa.ai_training"}
)  # fmt: skip
"""Entries whose ``use`` decides ``training_mining``; other entries are recorded only."""
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def voids(code: str) -> bool:
    """Whether a failure code shows altered content or signature (the claims do not count)."""
    return (
        code.endswith((".mismatch", ".missing", ".malformed"))
        or code.startswith("claimSignature.")
        or code in ("manifest.inaccessible", "claim.malformed", "general.error")
    )


@dataclass
class C2paResult:
    state: str = ABSENT
    signals: list[Signal] = field(default_factory=list)
    training: dict[str, str] = field(default_factory=dict)
    """Counted training entries (``cawg.ai_training`` -> ``notAllowed``...)."""
    remote_url: str | None = None


@functools.lru_cache(maxsize=4)
def _context(trust_anchors: str):
    """An offline SDK context; ``trust_anchors`` is a PEM bundle's path (empty: none)."""
    import c2pa

    verify: dict = {"remote_manifest_fetch": False, "ocsp_fetch": False}
    settings: dict = {"verify": verify}
    if trust_anchors:
        settings["trust"] = {"trust_anchors": Path(trust_anchors).read_text()}
    else:
        verify["verify_trust"] = False
    return c2pa.Context(settings=c2pa.Settings.from_dict(settings))


def _failures(results: dict | None) -> list[str]:
    active = (results or {}).get("activeManifest") or {}
    return [f.get("code", "") for f in active.get("failure") or []]


def _walk_actions(value: object, found: list[str]) -> None:
    """Every IPTC digital source type URI among an action's (vendor) parameters."""
    if isinstance(value, str):
        if "digitalsourcetype/" in value.lower():
            found.append(value)
    elif isinstance(value, dict):
        for v in list(value.values())[:256]:
            _walk_actions(v, found)
    elif isinstance(value, list):
        for v in value[:256]:
            _walk_actions(v, found)


def _manifest_signals(manifest: dict, source: str, counted: bool, out: C2paResult) -> None:
    label = manifest.get("label", "")
    for assertion in manifest.get("assertions") or []:
        name, data = assertion.get("label", ""), assertion.get("data") or {}
        if name.startswith("c2pa.actions"):
            for action in data.get("actions") or []:
                if dst := action.get("digitalSourceType"):
                    out.signals.append(
                        Signal(source, "digital_source_type", source_type_name(dst),
                               declares_for(dst), counted, f"{label} {action.get('action')}")
                    )  # fmt: skip
                found: list[str] = []
                _walk_actions(action.get("parameters"), found)
                for dst in found:
                    out.signals.append(
                        Signal("c2pa_action", "digital_source_type", source_type_name(dst),
                               declares_for(dst), counted, f"{label} {action.get('action')}")
                    )  # fmt: skip
        elif name.split(".v")[0] in TRAINING_LABELS:
            for key, entry in (data.get("entries") or {}).items():
                use = (entry or {}).get("use") if isinstance(entry, dict) else None
                if not isinstance(use, str):
                    continue
                out.signals.append(Signal(source, "training_mining", f"{key}={use}", None,
                                          counted, label))  # fmt: skip
                if counted and key in TRAINING_KEYS:
                    out.training[f"{label}/{key}"] = use


def _collect(store: dict, label: str, source: str, counted: bool, out: C2paResult,
             seen: set[str]) -> None:  # fmt: skip
    """Claims of manifest ``label`` and, through its ingredients, of theirs."""
    manifest = (store.get("manifests") or {}).get(label)
    if manifest is None or label in seen or len(seen) > 64:
        return
    seen.add(label)
    _manifest_signals(manifest, source, counted, out)
    for ingredient in manifest.get("ingredients") or []:
        child = ingredient.get("active_manifest")
        if not child:
            continue
        failed = [c for c in _failures(ingredient.get("validation_results")) if voids(c)]
        for code in failed:
            out.signals.append(Signal("c2pa_ingredient", "c2pa_validation", code, None, True,
                                      f"{child} voids its claims"))  # fmt: skip
        _collect(store, child, "c2pa_ingredient", counted and not failed, out, seen)


def read_c2pa(body: bytes, fmt: str | None, trust_anchors: str = "") -> C2paResult:
    """The manifest store embedded in ``body`` (or announced remotely), never raising."""
    import c2pa

    out = C2paResult()
    mime = MIME.get(fmt or "", "image/png")
    try:
        reader = c2pa.Reader(mime, io.BytesIO(body), context=_context(trust_anchors))
    except c2pa.C2paError.ManifestNotFound:
        return out
    except c2pa.C2paError as exc:
        text = str(exc)
        if text.startswith("Remote"):
            out.state = REMOTE_ONLY
            out.remote_url = text.rsplit(" ", 1)[-1]
            out.signals.append(Signal("c2pa", "c2pa_validation", "remote_only", None, False,
                                      out.remote_url))  # fmt: skip
            return out
        out.state = INVALID
        out.signals.append(Signal("c2pa", "c2pa_validation", "unreadable", None, False,
                                  text[:200]))  # fmt: skip
        return out
    with reader:
        store = json.loads(reader.json())
    state = (store.get("validation_state") or "invalid").lower()
    out.state = state if state in C2PA_STATES else INVALID
    failures = _failures(store.get("validation_results"))
    if not store.get("validation_results"):
        failures = [s.get("code", "") for s in store.get("validation_status") or []]
    for code in failures:
        note = "voids the claims" if voids(code) else "recorded; the claims count"
        out.signals.append(Signal("c2pa", "c2pa_validation", code, None, True, note))
    counted = not any(voids(c) for c in failures)
    active = store.get("active_manifest")
    if active:
        _collect(store, active, "c2pa", counted, out, set())
    return out
