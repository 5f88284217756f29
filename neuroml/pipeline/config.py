"""Pipeline files: the schema, safe YAML loading, and validation of the whole file.

A pipeline file is YAML::

    name: quickstart                  # optional, default: the file name
    description: Bin, PCA, decode.    # optional
    figures:                          # optional
      formats: [png]                  # any of png, pdf, svg; default [png]
      dpi: 100                        # 20 .. 1200; default 100
    steps:                            # required, at least one
      - step: epochs                  # a registered step (``neuroml steps`` lists them)
        params: {align_to: start_time, window: [-0.5, 1.0], bin_size: 0.05}
      - step: pca
        params: {n_components: 5}
        inputs: {data: epochs}        # optional: read an input from another name
        outputs: {latents: pcs}       # optional: store an output under another name
        save: true                    # optional: save every array output (true/false),
                                      # or a list of the outputs to save

The file is read with a :class:`yaml.SafeLoader` (no Python objects, no code; duplicate
keys are an error) and validated completely before any recording is touched: unknown
steps and keys, wrong types, bad values, missing required parameters, inputs no
earlier step produces and clashing output names are all reported together in one
:class:`~neuroml.errors.ConfigError`, each naming its key path
(``steps[2].params.n_components``) and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._validation import Interval, Options
from ..errors import ConfigError
from .constraints import ListOf, Pair, accepts, describe_all, number_hint
from .registry import _REGISTRY, CONTEXT_ROOT, StepSpec, _ensure_builtin_steps, get_step, suggest

__all__ = [
    "Pair",
    "ListOf",
    "StepConfig",
    "PipelineConfig",
    "load_pipeline",
    "parse_pipeline",
    "FIGURE_FORMATS",
]

#: Figure file formats a pipeline may ask for.
FIGURE_FORMATS = ("png", "pdf", "svg")

_TOP_KEYS = ("name", "description", "figures", "steps")
_STEP_KEYS = ("step", "params", "inputs", "outputs", "save")
_FIGURE_KEYS = ("formats", "dpi")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_RESERVED = {CONTEXT_ROOT, "summary", "run", "run_log"}


# ====================================================================== the result
@dataclass(frozen=True)
class StepConfig:
    """One validated step entry, with every default filled in.

    Attributes
    ----------
    index : int
        Position in the file (``steps[index]``).
    step : str
        The registered step name.
    params : dict
        Every parameter, defaults included.
    inputs : dict
        Input slot -> context name it is read from.
    outputs : dict
        Output -> context/file name it is stored under.
    save : dict
        Output -> whether it is written to disk.
    module : str
        The module that registers the step (worker processes import it first).
    """

    index: int
    step: str
    params: dict
    inputs: dict
    outputs: dict
    save: dict
    module: str = "neuroml.pipeline.steps"

    @property
    def spec(self) -> StepSpec:
        """The registered :class:`~neuroml.pipeline.registry.StepSpec`."""
        return get_step(self.step)

    @property
    def label(self) -> str:
        """``"steps[i] name"``, how logs and errors refer to this entry."""
        return f"steps[{self.index}] {self.step}"

    def to_dict(self) -> dict:
        """The canonical, JSON-able form (what the pipeline hash is computed from)."""
        return {"step": self.step, "params": _canonical(self.params), "inputs": dict(self.inputs),
                "outputs": dict(self.outputs), "save": dict(self.save)}


@dataclass(frozen=True)
class PipelineConfig:
    """A validated pipeline.

    Attributes
    ----------
    name : str
    description : str
    steps : tuple of StepConfig
    figure_formats : tuple of str
    dpi : int
    source : str or None
        The file it was read from.
    text : str or None
        The file's text as read (kept for provenance).
    """

    name: str
    description: str
    steps: tuple
    figure_formats: tuple = ("png",)
    dpi: int = 100
    source: str | None = None
    text: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """The canonical form: figures and steps with every default filled in."""
        return {
            "figures": {"formats": list(self.figure_formats), "dpi": self.dpi},
            "steps": [s.to_dict() for s in self.steps],
        }

    @property
    def hash(self) -> str:
        """SHA-256 of :meth:`to_dict` as canonical JSON.

        Comments, key order, the name and the description do not change it; any
        parameter, the data flow, what is saved and the figure formats do, and so does
        a changed default (defaults are filled in before hashing). A rerun skips a
        recording only when its done-marker holds this hash.
        """
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def step_modules(self) -> tuple:
        """Modules defining the steps used; worker processes import them first."""
        mods = ["neuroml.pipeline.steps"]
        for s in self.steps:
            m = s.module
            if m not in mods:
                mods.append(m)
        return tuple(mods)

    def saved_outputs(self) -> list[tuple[StepConfig, str, str, str]]:
        """``(step, output, name, kind)`` for every output that is written to disk."""
        out = []
        for s in self.steps:
            for o, spec in s.spec.outputs.items():
                if s.save.get(o, False):
                    out.append((s, o, s.outputs[o], spec.kind))
        return out


def _canonical(value):
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    return value


# ====================================================================== YAML
class _SafeUniqueLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys instead of keeping the last."""


def _construct_mapping(loader: _SafeUniqueLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            continue
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_SafeUniqueLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def load_pipeline(path) -> PipelineConfig:
    """Read and validate a pipeline file.

    Parameters
    ----------
    path : str or Path
        A YAML pipeline file.

    Returns
    -------
    pipeline : PipelineConfig

    Raises
    ------
    ConfigError
        The file is missing, is not valid YAML, or fails validation; the message
        names every bad key path and what is allowed there.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"Pipeline file '{path}' does not exist (or is not a file).")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"Pipeline file '{path}' could not be read: {err}") from err
    try:
        data = yaml.load(text, Loader=_SafeUniqueLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError(f"Pipeline file '{path}' is not valid YAML: {err}") from err
    return parse_pipeline(data, source=str(path), text=text, default_name=p.stem)


def parse_pipeline(data: Any, *, source: str | None = None, text: str | None = None,
                   default_name: str = "pipeline") -> PipelineConfig:
    """Validate a pipeline given as a mapping (what the YAML file holds).

    Parameters
    ----------
    data : dict
        The parsed file.
    source : str, default=None
        Where it came from (quoted in errors).
    text : str, default=None
        The original text (kept for provenance).
    default_name : str, default="pipeline"
        The name used when ``data`` has none.

    Returns
    -------
    pipeline : PipelineConfig

    Raises
    ------
    ConfigError
        Listing every problem found, each as ``key.path: what is wrong``.
    """
    v = _Validator()
    config = v.pipeline(data, default_name)
    if v.problems:
        where = f"Pipeline file '{source}'" if source else "The pipeline"
        n = len(v.problems)
        lines = "\n".join(f"  - {p}: {m}" for p, m in v.problems)
        err = ConfigError(f"{where} is invalid ({n} problem{'s' * (n > 1)}):\n{lines}")
        err.problems = list(v.problems)
        raise err
    return PipelineConfig(source=source, text=text, **config)


def _key_hint(key: Any) -> str:
    if isinstance(key, str):
        return ""
    return (f" (YAML read this key as {key!r}, not text: null, true, false, yes, no, on "
            "and off are keywords; quote the key)")


class _Validator:
    def __init__(self):
        self.problems: list[tuple[str, str]] = []

    def bad(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def unknown_keys(self, path: str, mapping: Mapping, allowed, what: str) -> None:
        for key in mapping:
            if key not in allowed:
                p = f"{path}.{key}" if path else str(key)
                self.bad(p, f"unknown key{suggest(key, allowed)}{_key_hint(key)}; {what} "
                            f"allows: {', '.join(allowed) if allowed else '(nothing)'}")

    # ------------------------------------------------------------------ top level
    def pipeline(self, data: Any, default_name: str) -> dict:
        out = {"name": default_name, "description": "", "steps": ()}
        if data is None:
            self.bad("(file)", "the file is empty; a pipeline needs at least 'steps'")
            return out
        if not isinstance(data, dict):
            self.bad("(file)", f"the file must hold a mapping with the keys {', '.join(_TOP_KEYS)}. "
                               f"Got {type(data).__name__} instead.")
            return out
        self.unknown_keys("", data, _TOP_KEYS, "the top level")
        for key in ("name", "description"):
            if key in data:
                if isinstance(data[key], str) and data[key].strip():
                    out[key] = data[key].strip()
                else:
                    self.bad(key, f"must be a non-empty str. Got {data[key]!r} instead.")
        out.update(self.figures(data.get("figures", {})))
        if "steps" not in data:
            self.bad("steps", "missing; a pipeline needs a list of steps")
        else:
            out["steps"] = self.steps(data["steps"])
        return out

    def figures(self, fig: Any) -> dict:
        out = {"figure_formats": ("png",), "dpi": 100}
        if fig is None:
            return out
        if not isinstance(fig, dict):
            self.bad("figures", f"must be a mapping with keys {', '.join(_FIGURE_KEYS)}. Got {fig!r} instead.")
            return out
        self.unknown_keys("figures", fig, _FIGURE_KEYS, "figures")
        if "formats" in fig:
            c = ListOf((Options(FIGURE_FORMATS),), unique=True)
            if c.accepts(fig["formats"]):
                out["figure_formats"] = tuple(fig["formats"])
            else:
                self.bad("figures.formats", f"must be {c}. Got {fig['formats']!r} instead.")
        if "dpi" in fig:
            c = Interval(numbers.Integral, 20, 1200)
            if c.accepts(fig["dpi"]):
                out["dpi"] = int(fig["dpi"])
            else:
                self.bad("figures.dpi", f"must be {c}. Got {fig['dpi']!r} instead.")
        return out

    # ------------------------------------------------------------------ steps
    def steps(self, steps: Any) -> tuple:
        if not isinstance(steps, list) or not steps:
            self.bad("steps", f"must be a non-empty list of step entries. Got {steps!r} instead.")
            return ()
        produced: dict[str, str] = {CONTEXT_ROOT: "the loader"}
        result = []
        for i, entry in enumerate(steps):
            sc = self.step(i, entry, produced)
            if sc is not None:
                result.append(sc)
        return tuple(result)

    def step(self, i: int, entry: Any, produced: dict) -> StepConfig | None:
        path = f"steps[{i}]"
        if not isinstance(entry, dict):
            self.bad(path, "must be a mapping like {step: NAME, params: {...}}. "
                           f"Got {entry!r} instead.")
            return None
        self.unknown_keys(path, entry, _STEP_KEYS, "a step entry")
        if "step" not in entry:
            self.bad(f"{path}.step", "missing; name the step to run (see `neuroml steps`)")
            return None
        name = entry["step"]
        _ensure_builtin_steps()
        if not isinstance(name, str) or name not in _REGISTRY:
            self.bad(f"{path}.step", f"unknown step {name!r}{suggest(name, _REGISTRY)}; "
                                     f"available steps: {', '.join(sorted(_REGISTRY))}")
            return None
        spec = _REGISTRY[name]
        params = self.params(path, spec, entry.get("params", {}))
        inputs = self.inputs(path, spec, entry.get("inputs", {}), produced)
        outputs = self.outputs(path, i, spec, entry.get("outputs", {}), produced)
        save = self.save(path, spec, entry.get("save", None))
        return StepConfig(index=i, step=name, params=params, inputs=inputs, outputs=outputs,
                          save=save, module=spec.module)

    def params(self, path: str, spec: StepSpec, given: Any) -> dict:
        ppath = f"{path}.params"
        if given is None:
            given = {}
        if not isinstance(given, dict):
            self.bad(ppath, f"must be a mapping of parameter names to values. Got {given!r} instead.")
            given = {}
        out = {}
        for key, value in given.items():
            if key not in spec.params:
                allowed = ", ".join(spec.params) if spec.params else "(none)"
                self.bad(f"{ppath}.{key}", f"unknown parameter of step '{spec.name}'"
                                            f"{suggest(key, spec.params)}{_key_hint(key)}; "
                                            f"allowed: {allowed}")
                continue
            p = spec.params[key]
            if any(accepts(c, value) for c in p.constraints):
                out[key] = list(value) if isinstance(value, tuple) else value
            else:
                self.bad(f"{ppath}.{key}", f"must be {describe_all(p.constraints)}. "
                                            f"Got {value!r} instead{number_hint(value)}.")
        for key, p in spec.params.items():
            if key in out or key in given:
                continue
            if p.required:
                self.bad(f"{ppath}.{key}", f"missing required parameter of step '{spec.name}' "
                                            f"({describe_all(p.constraints)}: {p.doc})")
            else:
                out[key] = _canonical(p.default)
        return out

    def slot_mapping(self, path: str, given: Any, step: str, slots, what: str,
                     shape: str) -> dict:
        """``given`` as a dict whose keys are among ``slots`` (each bad key reported)."""
        if not isinstance(given, dict):
            self.bad(path, f"must be a mapping of {shape}. Got {given!r} instead.")
            return {}
        for key in given:
            if key not in slots:
                self.bad(f"{path}.{key}", f"unknown {what} of step '{step}'"
                                          f"{suggest(key, slots)}; its {what}s: "
                                          f"{', '.join(slots) or '(none)'}")
        return given

    def inputs(self, path: str, spec: StepSpec, given: Any, produced: dict) -> dict:
        ipath = f"{path}.inputs"
        given = self.slot_mapping(ipath, given, spec.name, spec.inputs, "input",
                                  "input slot to a name")
        out = {}
        for slot, inp in spec.inputs.items():
            src = given.get(slot, inp.default)
            where = f"{ipath}.{slot}" if slot in given else path
            if not isinstance(src, str):
                self.bad(where, f"must be a str naming an earlier output. Got {src!r} instead.")
                continue
            if src not in produced:
                makers = sorted(s.name for s in _REGISTRY.values() if src in s.outputs)
                hint = f"; add a step that produces it first ({', '.join(makers)})" if makers else ""
                self.bad(where, f"step '{spec.name}' needs input '{src}', which no earlier step "
                                f"produces; available here: {', '.join(produced)}{hint}")
            out[slot] = src
        return out

    def outputs(self, path: str, i: int, spec: StepSpec, given: Any, produced: dict) -> dict:
        opath = f"{path}.outputs"
        given = self.slot_mapping(opath, given, spec.name, spec.outputs, "output",
                                  "output to a new name")
        out = {}
        for o in spec.outputs:
            name = given.get(o, o)
            where = f"{opath}.{o}" if o in given else path
            if not isinstance(name, str) or not _NAME_RE.match(name) or name in _RESERVED:
                self.bad(where, "must be a name of letters, digits, '_' and '-' (used as a file "
                                f"name), not one of {sorted(_RESERVED)}. Got {name!r} instead.")
                continue
            if name in produced:
                self.bad(where, f"output '{name}' of step '{spec.name}' is already produced by "
                                f"{produced[name]}; rename one with `outputs: {{{o}: {name}_2}}`")
                continue
            produced[name] = f"steps[{i}] ({spec.name})"
            out[o] = name
        return out

    def save(self, path: str, spec: StepSpec, given: Any) -> dict:
        savable = [o for o, s in spec.outputs.items() if s.kind in ("array", "table")]
        always = {o: True for o, s in spec.outputs.items() if s.kind in ("metrics", "figure")}
        defaults = {o: spec.outputs[o].save for o in savable}
        if given is None:
            chosen = defaults
        elif isinstance(given, bool):
            chosen = {o: given for o in savable}
        elif isinstance(given, list) and all(isinstance(g, str) for g in given):
            chosen = {o: False for o in savable}
            for g in given:
                if g in savable:
                    chosen[g] = True
                else:
                    self.bad(f"{path}.save", f"'{g}' is not an array or table output of step "
                                             f"'{spec.name}'; those are: {', '.join(savable) or '(none)'}")
        else:
            self.bad(f"{path}.save", "must be true, false or a list of output names. "
                                     f"Got {given!r} instead.")
            chosen = defaults
        result = {o: False for o in spec.outputs}
        result.update(always)
        result.update(chosen)
        return result
