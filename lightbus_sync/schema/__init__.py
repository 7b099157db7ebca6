"""Schemas on the bus: JSON Schema documents generated from API definitions (in
Lightbus's shape), shared through Redis, and used to validate events."""

from .generate import api_schema, encode_schema, event_parameters_schema, type_schema
from .registry import SchemaRegistry
from .remote import api_definition_from_schema

__all__ = [
    "SchemaRegistry",
    "api_definition_from_schema",
    "api_schema",
    "encode_schema",
    "event_parameters_schema",
    "type_schema",
]
