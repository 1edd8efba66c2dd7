"""Backends by name: :func:`llm_from_config` is the one place settings are read.

``name`` (or ``$NETGPT_LLM_BACKEND``, default ``embedded``) picks the backend; ``options`` are
its settings, validated at once against the backend's settings model (an unknown or bad option
is a :class:`~netgpt.errors.ConfigError` naming it). Environment overrides, used only for
options not given explicitly:

================================  ======================  =====================================
variable                          backend                 option
================================  ======================  =====================================
``NETGPT_LLM_BASE_URL``           openai_compat           ``base_url``
``NETGPT_LLM_MODEL``              openai_compat           ``model`` (served name or adapter)
``NETGPT_LLM_API_KEY``            openai_compat           ``api_key``
``NETGPT_LLM_TIMEOUT_S``          openai_compat, local    ``timeout_s``
``NETGPT_LLM_MODEL_DIR``          transformers_local      ``model_dir``
================================  ======================  =====================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from netgpt.cloud_models.base import LanguageModel
from netgpt.errors import ConfigError

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "backend_names", "llm_from_config"]

DEFAULT_BACKEND = "embedded"
BACKENDS = ("embedded", "openai_compat", "transformers_local")
_ENV: dict[str, dict[str, str]] = {
    "openai_compat": {
        "base_url": "NETGPT_LLM_BASE_URL",
        "model": "NETGPT_LLM_MODEL",
        "api_key": "NETGPT_LLM_API_KEY",
        "timeout_s": "NETGPT_LLM_TIMEOUT_S",
    },
    "transformers_local": {
        "model_dir": "NETGPT_LLM_MODEL_DIR",
        "timeout_s": "NETGPT_LLM_TIMEOUT_S",
    },
}


def backend_names() -> list[str]:
    """The registered backend names."""
    return list(BACKENDS)


def _settings(cls: type[BaseModel], name: str, options: Mapping[str, Any],
              environ: Mapping[str, str]) -> Any:
    merged = {key: environ[var] for key, var in _ENV.get(name, {}).items() if var in environ}
    merged.update(options)
    try:
        return cls.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"bad settings for LLM backend {name!r}: {problems} (options "
                          f"{sorted(cls.model_fields)})") from exc


def _embedded(options: Mapping[str, Any], environ: Mapping[str, str]) -> LanguageModel:
    from netgpt.cloud_models.embedded import EmbeddedModel

    if options:
        raise ConfigError(f"the embedded backend takes no options, got {sorted(options)}")
    return EmbeddedModel()


def _openai(options: Mapping[str, Any], environ: Mapping[str, str]) -> LanguageModel:
    from netgpt.cloud_models.openai_compat import OpenAICompatModel, OpenAICompatSettings

    return OpenAICompatModel(_settings(OpenAICompatSettings, "openai_compat", options, environ))


def _local(options: Mapping[str, Any], environ: Mapping[str, str]) -> LanguageModel:
    from netgpt.cloud_models.transformers_local import (
        LocalTransformersModel,
        LocalTransformersSettings,
    )

    settings = _settings(LocalTransformersSettings, "transformers_local", options, environ)
    return LocalTransformersModel(settings)


_FACTORIES: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], LanguageModel]] = {
    "embedded": _embedded,
    "openai_compat": _openai,
    "transformers_local": _local,
}


def llm_from_config(
    name: str | None = None, *, environ: Mapping[str, str] | None = None, **options: Any
) -> LanguageModel:
    """The backend called ``name`` with ``options`` (see the module docstring).

    ``environ`` replaces ``os.environ`` for the overrides (tests). Raises
    :class:`~netgpt.errors.ConfigError` for an unknown backend or bad options, and the
    backend's :class:`~netgpt.errors.LLMError` when it cannot load (missing model files).
    """
    env = os.environ if environ is None else environ
    chosen = (name or env.get("NETGPT_LLM_BACKEND") or DEFAULT_BACKEND).strip()
    if chosen not in _FACTORIES:
        raise ConfigError(f"unknown LLM backend {chosen!r}; choose one of {list(BACKENDS)}")
    return _FACTORIES[chosen](options, env)
