"""Validators for the plain values of a TFJob: names, labels, integers, string lists and maps.

Each returns the value in the shape the manifest needs or raises ``TFJobSpecError`` naming
the field.
The rules are Kubernetes' own (apimachinery's validation package), so what passes here is not
refused by the API server after a half-made submission.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_tfjob.model.errors import TFJobSpecError

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
ANNOTATIONS_MAX_BYTES = 256 * 1024
"""apimachinery's ``TotalAnnotationSizeLimitB``: keys and values of one object's annotations."""
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def integer(value: object, field: str, *, minimum: int = 0, maximum: int = INT32_MAX) -> int:
    """A whole number in [minimum, maximum]; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise TFJobSpecError(field, value, f"must be an integer from {minimum} to {maximum}")
    return value


def dns1035_label(value: object, field: str) -> str:
    """A name Kubernetes accepts for a Service: lowercase, starts with a letter, <= 63 chars."""
    if not isinstance(value, str) or len(value) > DNS_LABEL_MAX or not _DNS1035.match(value):
        raise TFJobSpecError(
            field,
            value,
            "must be a DNS-1035 label: at most 63 lowercase letters, digits or '-', "
            "starting with a letter and ending with a letter or digit",
        )
    return value


def dns1123_label(value: object, field: str) -> str:
    """A namespace name: lowercase letters, digits and '-', <= 63 characters."""
    if not isinstance(value, str) or len(value) > DNS_LABEL_MAX or not _DNS1123_LABEL.match(value):
        raise TFJobSpecError(
            field,
            value,
            "must be a DNS-1123 label: at most 63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit",
        )
    return value


def dns1123_subdomain(value: object, field: str) -> str:
    """A name such as a service account's: DNS-1123 labels joined by '.', <= 253 characters."""
    if (
        not isinstance(value, str)
        or len(value) > DNS_SUBDOMAIN_MAX
        or not _DNS1123_SUBDOMAIN.match(value)
    ):
        raise TFJobSpecError(
            field,
            value,
            "must be a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' or '.', "
            "starting and ending with a letter or digit (e.g. 'trainer' or 'trainer.ml')",
        )
    return value


def qualified_name(key: object, field: str) -> str:
    """A label or annotation key (or a resource name): ``[prefix/]name``, as apimachinery's
    ``IsQualifiedName``."""
    if not isinstance(key, str):
        raise TFJobSpecError(field, key, "keys must be strings")
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > DNS_SUBDOMAIN_MAX or not _DNS1123_SUBDOMAIN.match(prefix)):
        raise TFJobSpecError(
            field, key, "the key's prefix must be a DNS subdomain such as 'example.com'"
        )
    if len(name) > DNS_LABEL_MAX or not _LABEL_NAME.match(name):
        raise TFJobSpecError(
            field,
            key,
            "keys must be at most 63 letters, digits, '-', '_' or '.', starting and ending "
            "with a letter or digit, optionally prefixed by a DNS subdomain and '/'",
        )
    return key


def label_map(value: object, field: str) -> dict[str, str]:
    """Kubernetes labels: qualified-name keys, values of <= 63 label characters."""
    out = string_map(value, field)
    for key, item in out.items():
        qualified_name(key, f"{field}[{key!r}]")
        label_value(item, f"{field}[{key!r}]")
    return out


def label_value(value: str, field: str) -> str:
    """A label value (also a toleration's value): empty, or <= 63 label characters."""
    if value and (len(value) > DNS_LABEL_MAX or not _LABEL_NAME.match(value)):
        raise TFJobSpecError(
            field,
            value,
            "label values must be empty or at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit",
        )
    return value


def annotation_map(value: object, field: str) -> dict[str, str]:
    """Kubernetes annotations: qualified-name keys, any string values, at most 256 KiB in all
    (apimachinery's ``ValidateAnnotations``)."""
    out = string_map(value, field)
    for key in out:
        qualified_name(key, f"{field}[{key!r}]")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in out.items())
    if size > ANNOTATIONS_MAX_BYTES:
        raise TFJobSpecError(
            field,
            out,
            f"keys and values total {size} bytes; Kubernetes allows at most "
            f"{ANNOTATIONS_MAX_BYTES} (256 KiB) in all: keep large data elsewhere "
            "(a ConfigMap, a URI)",
            show_value=False,
        )
    return out


def string_map(value: object, field: str, *, secret_values: bool = False) -> dict[str, str]:
    """A mapping of strings to strings (None gives an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TFJobSpecError(field, value, "must be a mapping of strings to strings")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TFJobSpecError(
                f"{field}[{key!r}]",
                item,
                "keys and values must be strings (quote numbers: '3')",
                show_value=not secret_values,
            )
    return dict(value)


def string_list(value: object, field: str) -> list[str]:
    """A list of strings; a lone string is refused because it is almost always a mistake."""
    if isinstance(value, str):
        raise TFJobSpecError(
            field, value, f"must be a list of strings, e.g. {value.split()!r}, not one string"
        )
    if not isinstance(value, Sequence) or not all(isinstance(item, str) for item in value):
        raise TFJobSpecError(field, value, "must be a list of strings")
    return list(value)


def env_name(value: object, field: str) -> str:
    """An environment variable name Kubernetes accepts."""
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        raise TFJobSpecError(
            field, value, "must be a valid environment variable name ([-._a-zA-Z][-._a-zA-Z0-9]*)"
        )
    return value


def mapping(value: Any, field: str, what: str) -> dict[str, Any]:
    """A JSON object; ``what`` says what it should be, e.g. 'a V1Affinity or its dict'."""
    if not isinstance(value, Mapping):
        raise TFJobSpecError(field, value, f"must be {what}")
    return dict(value)
