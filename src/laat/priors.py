"""The Prior: signed feature-importance scores in [-10, 10], with where they came from.

A prior is the one artefact that crosses from elicitation into training, so it carries
its provenance with it: which kind of source produced it (``llm``, ``expert``, ``oracle``
or ``random``), which model, prompt and strategy, and what it cost. Priors not elicited
from an LLM say so in ``source`` and in every file name the pipelines derive from it.

JSON is the lossless format and a generated one: it carries the same fingerprint and a
note saying so, and a JSON prior whose scores no longer match its fingerprint is refused.
YAML is the hand-editable one: a domain expert can change scores, and on import the
fingerprint tells whether anyone did, so an edited prior is tagged as such and never passes
for raw LLM output.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import yaml

from laat.datasets import TASKS, TaskKind
from laat.jsonable import jsonable

# The one vocabulary of where a prior comes from (its ``source``): an LLM, or one of the
# non-LLM sources, which stay labelled as such. An LLM prior is elicited from a backend.
NonLLMSource = Literal["expert", "oracle", "random"]
PriorSource = Literal["llm", NonLLMSource]
LLMBackend = Literal["local", "openai"]
SOURCES: tuple[str, ...] = get_args(PriorSource)
NON_LLM_SOURCES: tuple[str, ...] = get_args(NonLLMSource)
LLM_BACKENDS: tuple[str, ...] = get_args(LLMBackend)
SCORE_MIN, SCORE_MAX = -10.0, 10.0
# How a k-output model reads a prior's score array: (k, d) one row per class, or (d,) shared.
PriorForm = Literal["per_class", "shared"]
PRIOR_FORMS: tuple[str, ...] = get_args(PriorForm)

ORACLE_NOTE = (
    "ORACLE prior: linear-model coefficients fit on the FULL labelled dataset. "
    "It has seen the test labels: an upper bound for evaluation only, never a real prior."
)
RANDOM_NOTE = "RANDOM prior: seeded uniform integers in [-10, 10]; a control with no knowledge."
# The one way to change a prior's scores by hand, quoted wherever a hand edit is refused.
HOW_TO_EDIT = "edit conf/base/priors/{dataset}.yml and run with prior_source=expert"
GENERATED_NOTE = (
    "Generated file, rewritten on every run; a hand edit here is detected (fingerprint) and "
    "refused. To change scores, " + HOW_TO_EDIT + " (start from the .yml next to this file)."
)


def prior_form(scores) -> PriorForm:
    """``per_class`` for a (k, d) score (or target) array, ``shared`` for a (d,) one."""
    return "per_class" if np.ndim(scores) == 2 else "shared"


class PriorError(ValueError):
    """A prior that is malformed or does not match the dataset; the message says what and where."""


def _utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _fingerprint(features: Sequence[str], mean, classes: Sequence[str] | None = None) -> str:
    """Hash of the scores as exported, to detect hand edits on re-import.

    A per-class prior hashes (class, feature, score) triples; a signed prior's hash is the
    one it always had, so existing files keep their fingerprints.
    """
    if classes is None:
        items = [[f, round(float(m), 6)] for f, m in zip(features, mean)]
    else:
        items = [[c, f, round(float(m), 6)] for c, row in zip(classes, mean) for f, m in zip(features, row)]
    canon = json.dumps(items, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def _floats(v: Any, name: str) -> list:
    """Numbers (or nested lists of numbers) as floats; a clear error for anything else."""
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_floats(x, name) for x in v]
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
        raise PriorError(f"prior {name} holds {v!r}, not a number")
    return float(v)


def _zeros_like(v: Any) -> Any:
    """0.0 in the shape of ``v`` (a number or nested lists), so a bad shape reaches validation."""
    return [_zeros_like(x) for x in v] if isinstance(v, list) else 0.0


@dataclass
class Prior:
    """Scores by encoded feature name, in one of two shapes.

    **Signed** (``classes`` is None): ``mean`` has one score per feature. For binary
    classification it is the effect of increasing the feature on the probability of the
    positive class; for regression, the effect on the target value; for a multiclass task
    it is a *shared* prior, one score per feature for all classes (how the model reads it
    is the estimator's business, see `laat.multioutput`).

    **Per class** (``classes`` = the k >= 2 class labels, as text): ``mean`` and ``spread``
    are k rows of d values, row i for ``classes[i]``, each row signed as above for its own
    class (increasing the feature raises the probability of that class); every sample in
    ``samples`` is such a k x d matrix. `class_scores` gives them by name; `scores` refuses,
    so no code reads a per-class prior as a signed one by mistake.

    In both shapes ``mean`` is the element-wise mean over samples, ``spread`` the standard
    deviation over samples (0 when there is only one), ``samples`` the individual score
    vectors when known. The JSON form of a signed prior is unchanged by the per-class
    shape (``classes`` is written only when set).
    """

    features: list[str]
    mean: list[float] | list[list[float]]
    spread: list[float] | list[list[float]] | None = None
    source: str = "llm"
    provenance: dict[str, Any] = field(default_factory=dict)
    samples: list[list[float]] | list[list[list[float]]] = field(default_factory=list)
    classes: list[str] | None = None

    def __post_init__(self) -> None:
        self.features = [str(f) for f in self.features]
        if self.classes is not None:
            self.classes = [str(c) for c in self.classes]
        self.mean = _floats(self.mean, "mean")
        if self.spread is None:
            self.spread = _zeros_like(self.mean)
        self.spread = _floats(self.spread, "spread")
        self.samples = [_floats(s, f"sample {i}") for i, s in enumerate(self.samples)]
        for name in ("mean", "spread"):
            if not isinstance(getattr(self, name), list):
                raise PriorError(f"prior {name} must be a list of numbers, got {getattr(self, name)!r}")
        self.validate()

    @property
    def per_class(self) -> bool:
        """True for a per-class prior (one score vector per class)."""
        return self.classes is not None

    # ---- checks -----------------------------------------------------------------------
    def validate(self) -> None:
        if self.source not in SOURCES:
            raise PriorError(f"prior source {self.source!r} is not one of {list(SOURCES)}")
        if not self.features:
            raise PriorError("prior has no features")
        dupes = sorted({f for f in self.features if self.features.count(f) > 1})
        if dupes:
            raise PriorError(f"prior lists features more than once: {dupes}")
        if self.classes is None:
            self._validate_rows([("", self.mean, self.spread, self.samples)])
            return
        if len(self.classes) < 2:
            raise PriorError(f"a per-class prior needs at least 2 classes, got {self.classes}")
        dupes = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if dupes:
            raise PriorError(f"prior lists classes more than once: {dupes}")
        k = len(self.classes)
        for name, m in (("mean", self.mean), ("spread", self.spread)):
            if len(m) != k or not all(isinstance(r, list) for r in m):
                raise PriorError(
                    f"per-class prior {name} must be {k} rows (one per class {self.classes}) "
                    f"of {len(self.features)} values"
                )
        for i, s in enumerate(self.samples):
            if len(s) != k or not all(isinstance(r, list) for r in s):
                raise PriorError(f"prior sample {i} must be {k} rows, one per class {self.classes}")
        self._validate_rows(
            [
                (f"class {c!r} ", self.mean[i], self.spread[i], [s[i] for s in self.samples])
                for i, c in enumerate(self.classes)
            ]
        )

    def _validate_rows(self, rows) -> None:
        d = len(self.features)
        for where, mean, spread, samples in rows:
            for name, vec in (("mean", mean), ("spread", spread)):
                if any(isinstance(v, list) for v in vec):
                    raise PriorError(
                        f"prior {where}{name} is nested, but the prior has no `classes`: "
                        "a per-class prior must name its classes"
                    )
                if len(vec) != d:
                    raise PriorError(f"prior {where}{name} has {len(vec)} values for {d} features")
            for f, m in zip(self.features, mean):
                if not math.isfinite(m) or not SCORE_MIN <= m <= SCORE_MAX:
                    raise PriorError(f"prior {where}score for {f!r} is {m}, outside [{SCORE_MIN:g}, {SCORE_MAX:g}]")
            for f, s in zip(self.features, spread):
                if not math.isfinite(s) or s < 0:
                    raise PriorError(f"prior {where}spread for {f!r} is {s}; it must be a finite number >= 0")
            for i, s in enumerate(samples):
                if len(s) != d:
                    raise PriorError(f"prior {where}sample {i} has {len(s)} values for {d} features")

    def check_features(self, expected: Sequence[str], where: str = "dataset") -> None:
        """Raise if this prior's feature names differ from ``expected`` (order aside)."""
        missing = [f for f in expected if f not in set(self.features)]
        unknown = [f for f in self.features if f not in set(expected)]
        if missing or unknown:
            raise PriorError(
                f"prior ({self.source}) does not match the {where}'s encoded columns: "
                f"missing {missing}, unknown {unknown}"
            )

    def check_classes(self, expected: Sequence[str], where: str = "dataset") -> None:
        """Raise unless this is a per-class prior for exactly the classes ``expected`` (as text)."""
        expected = [str(c) for c in expected]
        if self.classes is None:
            raise PriorError(
                f"prior ({self.source}) has one signed score per feature, but the {where} has "
                f"classes {expected}: a per-class prior needs `classes`"
            )
        if set(self.classes) != set(expected):
            raise PriorError(f"prior ({self.source}) is for classes {self.classes}, the {where} has {expected}")

    def aligned(self, expected: Sequence[str], classes: Sequence[str] | None = None) -> Prior:
        """The same prior with features in ``expected`` order (and per-class rows in ``classes`` order)."""
        self.check_features(expected)
        idx = [self.features.index(f) for f in expected]
        if self.classes is None:
            if classes is not None:
                self.check_classes(classes)
            return Prior(
                features=list(expected),
                mean=[self.mean[i] for i in idx],
                spread=[self.spread[i] for i in idx],
                source=self.source,
                provenance=dict(self.provenance),
                samples=[[s[i] for i in idx] for s in self.samples],
            )
        order = list(self.classes) if classes is None else [str(c) for c in classes]
        self.check_classes(order)
        rows = [self.classes.index(c) for c in order]

        def pick(m):
            return [[m[r][i] for i in idx] for r in rows]

        return Prior(
            features=list(expected),
            mean=pick(self.mean),
            spread=pick(self.spread),
            source=self.source,
            provenance=dict(self.provenance),
            samples=[pick(s) for s in self.samples],
            classes=order,
        )

    def matrix(self) -> np.ndarray:
        """The scores as an array: (d,) for a signed prior, (k, d) for a per-class one."""
        return np.asarray(self.mean, dtype=np.float64)

    # ---- views --------------------------------------------------------------------------
    def scores(self) -> dict[str, float]:
        """Feature -> score of a signed prior (a per-class prior: see `class_scores`)."""
        self._require_signed("scores")
        return dict(zip(self.features, self.mean))

    def spreads(self) -> dict[str, float]:
        self._require_signed("spreads")
        return dict(zip(self.features, self.spread))

    def class_scores(self) -> dict[str, dict[str, float]]:
        """Class -> feature -> score of a per-class prior."""
        if self.classes is None:
            raise PriorError(f"prior ({self.source}) has one signed score per feature, not one per class; use scores()")
        return {c: dict(zip(self.features, row)) for c, row in zip(self.classes, self.mean)}

    def class_spreads(self) -> dict[str, dict[str, float]]:
        self.class_scores()  # the same check
        return {c: dict(zip(self.features, row)) for c, row in zip(self.classes, self.spread)}

    def _require_signed(self, what: str) -> None:
        if self.classes is not None:
            raise PriorError(
                f"prior ({self.source}) has one score vector per class {self.classes}; "
                f"{what}() is for a signed prior, use class_{what}()"
            )

    @property
    def label(self) -> str:
        """Short tag for file names and reports, e.g. ``llm`` or ``oracle``; ``expert-edited``."""
        return f"{self.source}-edited" if self.provenance.get("edited") else self.source

    def __len__(self) -> int:
        return len(self.features)

    # ---- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {
            "note": GENERATED_NOTE.format(dataset=self.provenance.get("dataset") or "<dataset>"),
            "source": self.source,
            "features": list(self.features),
        }
        if self.classes is not None:
            d["classes"] = list(self.classes)
        return d | {
            "mean": jsonable(self.mean),
            "spread": jsonable(self.spread),
            "samples": jsonable(self.samples),
            "fingerprint": _fingerprint(self.features, self.mean, self.classes),
            "provenance": jsonable(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "<dict>") -> Prior:
        if not isinstance(data, Mapping):
            raise PriorError(f"{origin}: a prior must be a mapping, got {type(data).__name__}")
        missing = [k for k in ("source", "features", "mean") if k not in data]
        if missing:
            raise PriorError(f"{origin}: prior is missing keys {missing}")
        check_not_hand_edited(data, origin)
        try:
            return cls(
                features=list(data["features"]),
                mean=list(data["mean"]),
                spread=data.get("spread"),
                source=data["source"],
                provenance=dict(data.get("provenance") or {}),
                samples=list(data.get("samples") or []),
                classes=data.get("classes"),
            )
        except PriorError as exc:
            raise PriorError(f"{origin}: {exc}") from None

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load_json(cls, path: str | Path) -> Prior:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PriorError(f"no prior file at {path}") from None
        except json.JSONDecodeError as exc:
            raise PriorError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(data, origin=str(path))

    # ---- YAML (hand-editable) -------------------------------------------------------------
    def to_yaml(self) -> str:
        """YAML text an expert can edit: one ``name: score`` line per feature (per class, if per-class)."""
        prov = {k: v for k, v in jsonable(self.provenance).items() if k not in {"prompt", "prompts", "record"}}
        meaning = (
            "raises the probability of the positive class (for a regression target: raises the\n# target value)"
            if self.classes is None
            else "raises the probability of the class it is listed under"
        )
        header = (
            f"# LAAT feature-importance prior (source: {self.label}).\n"
            "# Edit the numbers under `scores` (each in [-10, 10]): positive = increasing the feature\n"
            f"# {meaning}, negative = lowers it, 0 = no effect.\n"
            "# Keep every feature. On import, a changed score makes this an expert-edited prior;\n"
            "# leave `fingerprint` as it is (it is how the edit is detected).\n"
        )
        rounded = _num_nested(self.mean)
        if self.classes is None:
            scores = dict(zip(self.features, rounded))
            spread = dict(zip(self.features, _num_nested(self.spread)))
        else:
            scores = {c: dict(zip(self.features, row)) for c, row in zip(self.classes, rounded)}
            spread = {c: dict(zip(self.features, row)) for c, row in zip(self.classes, _num_nested(self.spread))}
        body = {
            "source": self.source,
            "scores": scores,
            "spread": spread,
            # of the scores as written above (rounded), or an unedited 23/3 would read back as edited
            "fingerprint": _fingerprint(self.features, rounded, self.classes),
            "provenance": prov,
        }
        return header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)

    def save_yaml(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path

    @classmethod
    def from_yaml(cls, text: str, origin: str = "<yaml>") -> Prior:
        """Parse the YAML form; a prior whose scores changed since export becomes ``expert``.

        A file without a fingerprint was written by hand and is an expert prior; it may not
        claim another source, because nothing shows where its numbers came from.
        """
        data = _yaml_mapping(text, origin)
        classes, features, mean = _yaml_scores(data["scores"], origin)
        spread = _yaml_spreads(data.get("spread") or {}, features, classes, origin)
        source, provenance, edited = _yaml_source(data, features, mean, classes, origin)
        if edited:
            spread = _zeros_like(mean)  # the sample spread no longer describes these numbers
        try:
            return cls(
                features=features, mean=mean, spread=spread, source=source, provenance=provenance, classes=classes
            )
        except PriorError as exc:
            raise PriorError(f"{origin}: {exc}") from None

    @classmethod
    def load_yaml(cls, path: str | Path) -> Prior:
        path = Path(path)
        if not path.exists():
            raise PriorError(f"no prior file at {path}")
        return cls.from_yaml(path.read_text(encoding="utf-8"), origin=str(path))

    @classmethod
    def load(cls, path: str | Path) -> Prior:
        """Load JSON or YAML by file suffix."""
        p = Path(path)
        return cls.load_yaml(p) if p.suffix in {".yml", ".yaml"} else cls.load_json(p)


def check_not_hand_edited(data: Mapping[str, Any], origin: str = "<dict>") -> None:
    """Raise if a generated prior's scores no longer match the fingerprint written with them.

    A dict without a fingerprint (built in code, or written before fingerprints) passes.
    """
    fp = data.get("fingerprint")
    if fp is None:
        return
    try:
        classes = data.get("classes")
        actual = _fingerprint(
            [str(f) for f in data["features"]],
            _floats(list(data["mean"]), "mean"),
            None if classes is None else [str(c) for c in classes],
        )
    except (KeyError, TypeError, ValueError):
        actual = None
    if actual != fp:
        dataset = (data.get("provenance") or {}).get("dataset") or "<dataset>"
        raise PriorError(
            f"{origin}: this generated prior was edited by hand (its scores no longer match its "
            f"fingerprint), so they would pass for the {data.get('source')!r} source's own. "
            f"To keep them, {HOW_TO_EDIT.format(dataset=dataset)}; delete this file to "
            "regenerate it."
        )


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(float(v), 4)


def _num_nested(v: list) -> list:
    return [_num_nested(x) if isinstance(x, list) else _num(x) for x in v]


def _yaml_mapping(text: str, origin: str) -> Mapping[str, Any]:
    """The YAML document, which must be a mapping holding a ``scores`` mapping."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PriorError(f"{origin}: not valid YAML ({exc})") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("scores"), Mapping):
        raise PriorError(f"{origin}: expected a mapping with a `scores:` mapping of feature -> number")
    return data


def _yaml_scores(scores: Mapping, origin: str) -> tuple[list[str] | None, list[str], list]:
    """(classes, features, mean) of ``scores``: per class when every value is a mapping, else signed."""
    if not (scores and all(isinstance(v, Mapping) for v in scores.values())):
        return None, [str(f) for f in scores], _yaml_numbers(scores, origin, "")
    classes = [str(c) for c in scores]
    features = [str(f) for f in next(iter(scores.values()))]
    for c, row in scores.items():
        if [str(f) for f in row] != features:
            raise PriorError(
                f"{origin}: class {str(c)!r} lists features {[str(f) for f in row]}, the "
                f"first class lists {features}; every class must score the same features"
            )
    mean = [_yaml_numbers(row, origin, f"class {str(c)!r} ") for c, row in scores.items()]
    return classes, features, mean


def _yaml_spreads(spread_map: Any, features: list[str], classes: list[str] | None, origin: str) -> list:
    """The ``spread`` mapping shaped like the scores; features (or classes) it leaves out get 0."""
    if not isinstance(spread_map, Mapping):
        raise PriorError(f"{origin}: `spread` must be a mapping like `scores`")
    if classes is None:
        return _yaml_spread(spread_map, features, origin, "")
    unknown = [c for c in spread_map if str(c) not in classes]
    if unknown:
        raise PriorError(f"{origin}: `spread` names classes not in `scores`: {unknown}")
    return [_yaml_spread(spread_map.get(c) or {}, features, origin, f"class {c!r} ") for c in classes]


def _yaml_source(
    data: Mapping[str, Any], features: list[str], mean: list, classes: list[str] | None, origin: str
) -> tuple[str, dict[str, Any], bool]:
    """(source, provenance, edited) as the fingerprint tells them (see `Prior.from_yaml`)."""
    claimed = data.get("source", "expert")
    provenance = dict(data.get("provenance") or {})
    fp = data.get("fingerprint")
    if fp is None:
        if claimed != "expert":
            raise PriorError(
                f"{origin}: a hand-written prior (no `fingerprint`) must have source 'expert', not {claimed!r}"
            )
        provenance.setdefault("source_kind", "expert")
        return "expert", provenance, False
    if fp == _fingerprint(features, mean, classes):
        return claimed, provenance, False
    # Edited since export: the numbers are now the expert's, whatever produced the draft.
    edited = {
        "edited": True,
        "edited_from": claimed,
        "source_kind": "expert",
        "draft_provenance": provenance,
        "imported_at": _utcnow(),
    }
    return "expert", edited, True


def _yaml_numbers(scores: Mapping, origin: str, where: str) -> list[float]:
    out = []
    for f, v in scores.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise PriorError(f"{origin}: {where}score for {f!r} is {v!r}, not a number in [-10, 10]")
        out.append(float(v))
    return out


def _yaml_spread(spread_map: Any, features: list[str], origin: str, where: str) -> list[float]:
    if not isinstance(spread_map, Mapping):
        raise PriorError(f"{origin}: {where}`spread` must be a mapping of feature -> number")
    unknown = [f for f in spread_map if str(f) not in features]
    if unknown:
        raise PriorError(f"{origin}: {where}`spread` names features not in `scores`: {unknown}")
    return [float(spread_map.get(f, 0.0)) for f in features]


def as_prior(obj: Prior | Mapping[str, Any], origin: str = "<prior>") -> Prior:
    """Accept a Prior or its dict form (as stored by the Kedro JSON dataset)."""
    return obj if isinstance(obj, Prior) else Prior.from_dict(obj, origin=origin)


# ---- non-LLM builders ----------------------------------------------------------------------


def random_prior(features: Sequence[str], seed: int = 0, classes: Sequence[str] | None = None) -> Prior:
    """Seeded uniform integer scores: a no-knowledge control, labelled ``random``.

    With ``classes``, a per-class prior (one row of scores per class). The signed form draws
    the same numbers as it always did for a given seed.
    """
    rng = np.random.default_rng(seed)
    shape = (len(features),) if classes is None else (len(classes), len(features))
    mean = rng.integers(int(SCORE_MIN), int(SCORE_MAX) + 1, size=shape).astype(float)
    return Prior(
        features=list(features),
        mean=mean.tolist(),
        source="random",
        classes=None if classes is None else list(classes),
        provenance={"source_kind": "random", "seed": int(seed), "note": RANDOM_NOTE, "created_at": _utcnow()},
    )


def oracle_prior(
    X_enc,
    y,
    meta=None,
    *,
    task: TaskKind = "binary",
    classes: Sequence[str] | None = None,
    C: float = 1.0,
    max_iter: int = 5000,
) -> Prior:
    """Attributions of a linear model fit on ALL labelled rows: an evaluation upper bound.

    Columns are Min-Max scaled first (as in training), missing values imputed with the
    column median, and the coefficients rescaled so the largest magnitude is 10.
    ``task``: "binary" (logistic regression, y in {0, 1}), "multiclass" (multinomial
    logistic regression; a per-class prior for ``classes``, the labels of y's codes
    0..k-1 in order, default the sorted distinct values of y) or "regression" (ridge
    regression with alpha = 1/C on the standardised target; a signed prior).
    """
    from sklearn.pipeline import make_pipeline

    from laat.preprocess import minmax_scaler, missing_value_imputer

    if task not in TASKS:
        raise PriorError(f"oracle_prior: task {task!r} is not one of {list(TASKS)}")
    X, y, features = _oracle_rows(X_enc, y, meta)
    linear, label, fit_y, classes = _ORACLE_MODELS[task](y, classes, C, max_iter)
    # the training pipeline's imputer: medians, and 0 for an all-missing column
    model = make_pipeline(missing_value_imputer(), minmax_scaler(), linear)
    model.fit(X, fit_y)
    coef = np.atleast_2d(model[-1].coef_)
    scaled = _to_score_range(coef)
    per_class = task == "multiclass"
    return Prior(
        features=features,
        mean=scaled.tolist() if per_class else scaled[0].tolist(),
        source="oracle",
        classes=classes if per_class else None,
        provenance={
            "source_kind": "oracle",
            "note": ORACLE_NOTE,
            "task": task,
            "method": label + " on median-imputed, Min-Max-scaled one-hot data; coef * 10 / max|coef|",
            "dataset": getattr(meta, "name", None),
            "n_rows": int(X.shape[0]),
            "raw_coef": coef.tolist() if per_class else coef[0].tolist(),
            "created_at": _utcnow(),
        },
    )


def _oracle_rows(X_enc, y, meta) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The rows as floats, the labels flat and the column names, checked against ``meta``."""
    import pandas as pd

    if isinstance(X_enc, pd.DataFrame):
        features = [str(c) for c in X_enc.columns]
        X = X_enc.to_numpy(dtype=float)
    else:
        X = np.asarray(X_enc, dtype=float)
        if meta is None:
            raise PriorError("oracle_prior needs a DataFrame or `meta` to name the columns")
        features = list(meta.encoded_columns)
    if meta is not None and features != list(meta.encoded_columns):
        raise PriorError(
            f"oracle_prior: columns {features} are not dataset {meta.name!r}'s "
            f"encoded columns {list(meta.encoded_columns)}"
        )
    y = np.asarray(y).ravel()
    if X.shape[0] != y.shape[0]:
        raise PriorError(f"oracle_prior: {X.shape[0]} rows but {y.shape[0]} labels")
    return X, y, features


def _oracle_regression(y, classes, C, max_iter):
    """Ridge on the standardised target (alpha = 1/C); a signed prior, so no classes."""
    from sklearn.linear_model import Ridge

    y = y.astype(float)
    if not np.all(np.isfinite(y)) or np.std(y) == 0:
        raise PriorError("oracle_prior (regression) needs a finite, non-constant target")
    return Ridge(alpha=1.0 / C), "sklearn Ridge (alpha=%g)" % (1.0 / C), (y - y.mean()) / y.std(), classes


def _oracle_binary(y, classes, C, max_iter):
    """Logistic regression on 0/1 labels, both of which must occur."""
    from sklearn.linear_model import LogisticRegression

    y = y.astype(int)
    if set(np.unique(y)) != {0, 1}:
        raise PriorError(f"oracle_prior needs both classes 0 and 1 in y, got {np.unique(y).tolist()}")
    return LogisticRegression(C=C, max_iter=max_iter), f"sklearn LogisticRegression (l2, C={C:g})", y, classes


def _oracle_multiclass(y, classes, C, max_iter):
    """Multinomial logistic regression on y's codes; ``classes`` (as text) name them in order."""
    from sklearn.linear_model import LogisticRegression

    codes, fit_y = np.unique(y, return_inverse=True)
    classes = [str(c) for c in (codes if classes is None else classes)]
    if len(codes) != len(classes) or len(classes) < 3:
        raise PriorError(
            f"oracle_prior (multiclass) needs every one of >= 3 classes {classes} in y, "
            f"got {len(codes)} distinct values"
        )
    label = f"sklearn multinomial LogisticRegression (l2, C={C:g})"
    return LogisticRegression(C=C, max_iter=max_iter), label, fit_y, classes


# task -> (y, classes, C, max_iter) -> (linear model, its label, the target it fits, classes)
_ORACLE_MODELS = {"regression": _oracle_regression, "binary": _oracle_binary, "multiclass": _oracle_multiclass}


def _to_score_range(coef: np.ndarray) -> np.ndarray:
    """Coefficients rescaled so the largest magnitude is `SCORE_MAX` (all zero stays zero)."""
    top = float(np.max(np.abs(coef)))
    return np.clip(coef * (SCORE_MAX / top), SCORE_MIN, SCORE_MAX) if top > 0 else np.zeros_like(coef)


def oracle_prior_from_frame(df, meta, **kwargs) -> Prior:
    """Oracle prior straight from a validated raw DataFrame."""
    from laat.datasets import encode, labels

    return oracle_prior(encode(df, meta), labels(df, meta), meta, **kwargs)
