from collections.abc import Sequence
from typing import Any

def configure(*keys_and_helpers: Any) -> None: ...
def encode_spans(
    spans: Sequence[Any], kept: Any, ascii: bool
) -> list[tuple[str, bytes, tuple[bytes, ...]] | None]: ...
