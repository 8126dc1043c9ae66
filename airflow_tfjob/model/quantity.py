"""Kubernetes resource quantities ("500m", "4Gi", "1e3"), validated and compared without a client.

The pattern is the one the TFJob CRD itself carries for int-or-string quantities, so anything we
accept the API server accepts too.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from airflow_tfjob.model.errors import TFJobSpecError

PATTERN = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_ALLOWED = "must be a non-negative Kubernetes quantity such as 2, 0.5, '500m', '4Gi' or '10G'"


def normalize(value: object, field: str) -> str:
    """Return the quantity as the string we put in the manifest, or raise naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise TFJobSpecError(field, value, _ALLOWED)
    text = str(value).strip() if not isinstance(value, float) else repr(value)
    if not PATTERN.match(text) or text.startswith("-"):
        raise TFJobSpecError(field, value, _ALLOWED)
    return text


def to_decimal(text: str) -> Decimal:
    """The quantity's value in base units, for comparing requests with limits."""
    for suffix, factor in _BINARY.items():
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * factor
    if re.search(r"[eE][+-]?[0-9.]+$", text):
        try:
            return Decimal(text)
        except InvalidOperation:  # "1e1.5": valid for the server's pattern, not for Decimal
            mantissa, exponent = re.split("[eE]", text)
            return Decimal(mantissa) * Decimal(10) ** Decimal(exponent)
    suffix = text[-1] if text and text[-1] in _DECIMAL else ""
    number = text[: -len(suffix)] if suffix else text
    return Decimal(number) * _DECIMAL[suffix]
