"""Language identification with fastText's lid.176 model, shipped in the package.

The compressed model (tamis/models/lid.176.ftz, see NOTICE.md there) is loaded
once per process and predicts a whole batch in one call. fastText reads one
line per prediction, so newlines become spaces first, as datatrove and FineWeb
do. The defaults follow FineWeb: keep a document whose top language scores at
least 0.65. With `languages` set, the top language must also be one of them;
since scores sum to at most 1, a threshold above 0.5 makes this the same as
datatrove's "any listed language above the threshold". Text without a word
gets language "" and confidence 0.
"""

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from tamis.errors import ConfigError, ResourceError
from tamis.filters.base import Filter, first_reason
from tamis.filters.registry import register
from tamis.filters.text import DocView
from tamis.filters.words import text_array

MODEL = Path(__file__).resolve().parents[1] / "models" / "lid.176.ftz"
_LABEL = "__label__"


@lru_cache(maxsize=4)
def load_model(path: str) -> Any:
    """The fastText model at `path`, one per process."""
    if not Path(path).is_file():
        raise ResourceError(
            f"The language-id model {path} is missing.", hint="reinstall tamis: the model ships inside the package"
        )
    try:
        import fasttext
    except ImportError as e:
        raise ResourceError("langid needs the fasttext module.", hint="pip install fasttext-numpy2") from e
    return fasttext.load_model(path)


def model_languages(path: str) -> set[str]:
    return {label.removeprefix(_LABEL) for label in load_model(path).get_labels()}


def predict(texts: list[str], path: str = str(MODEL)) -> tuple[np.ndarray, np.ndarray]:
    """(top language code, its probability) per text; ("", 0.0) for text without a word."""
    labels, probs = load_model(path).predict(texts, k=1, threshold=0.0)
    language = np.array([lab[0].removeprefix(_LABEL) if lab else "" for lab in labels], dtype=object)
    confidence = np.array([min(float(p[0]), 1.0) if len(p) else 0.0 for p in probs], dtype=np.float64)
    blank = np.array([not t.strip() for t in texts], dtype=bool)
    language[blank], confidence[blank] = "", 0.0
    return language, confidence


@register
class LangId(Filter):
    """Adds language (ISO 639 code as lid.176 names it) and confidence; drops other or uncertain languages."""

    name = "langid"
    languages: list[str] = []  # empty: any language
    min_confidence: float = 0.65
    model_path: str = str(MODEL)

    def check(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(
                f"The 'min_confidence' parameter of {self.name} must be in [0, 1]. Got {self.min_confidence} instead."
            )
        unknown = sorted(set(self.languages) - model_languages(self.model_path))
        if unknown:
            raise ConfigError(
                f"The 'languages' parameter of {self.name} names {unknown[0]!r}, which lid.176 does not know.",
                hint="use ISO 639 codes as lid.176 has them, e.g. en, de, fr, zh",
            )

    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        texts = docs.cached("text.one_line", lambda d: pc.replace_substring(text_array(d), "\n", " ").to_pylist())
        language, confidence = predict(texts, self.model_path)
        return {self.col("language"): language, self.col("confidence"): confidence}

    def rule(self, scores: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        language = scores[self.col("language")]
        other = ~np.isin(language, self.languages) if self.languages else np.zeros(len(language), dtype=bool)
        return first_reason(
            len(language),
            [("low_language_confidence", scores[self.col("confidence")] < self.min_confidence), ("language", other)],
        )
