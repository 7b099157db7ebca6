"""The incoming decoder: a stream entry's fields to a handler's keyword arguments.

Three steps, used by the runner and by the testing helpers alike:
``decode`` (wire rules; ``MalformedEntry``), ``validate`` (against the event's schema
when ``validate.incoming`` is on; ``InvalidIncomingEvent``) and ``structure`` (the
listener's casts; ``InvalidIncomingEvent`` naming the parameter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from .errors import InvalidIncomingEvent
from .wire import RawEvent, decode_entry

if TYPE_CHECKING:
    from .config import ApiConfig
    from .listeners import EventBinding

Validator = Callable[[dict], Any]


class IncomingDecoder:
    """Decodes entries for one bus: ``api_config(name)`` gives an API's configuration,
    ``validator(api, event)`` the compiled schema validator (None if no schema)."""

    def __init__(
        self,
        api_config: Callable[[str], "ApiConfig"],
        validator: Callable[[str, str], Optional[Validator]],
    ) -> None:
        self._api_config = api_config
        self._validator = validator

    def decode(self, fields: Mapping[bytes, bytes]) -> RawEvent:
        """The entry's event, parameters JSON-decoded. Raises ``MalformedEntry``."""
        return decode_entry(fields)

    def validate(self, raw: RawEvent) -> None:
        """Check the raw parameters against the event's schema when ``validate.incoming``
        is on; raises ``InvalidIncomingEvent`` with the validator's message."""
        api_config = self._api_config(raw.api_name)
        if not api_config.validate.incoming:
            return
        validator = self._validator(raw.api_name, raw.event_name)
        if validator is None:
            if api_config.strict_validation:
                raise InvalidIncomingEvent(
                    f"{raw.api_name}.{raw.event_name}: no schema known for this event (strict_validation)"
                )
            return
        try:
            validator(raw.parameters)
        except Exception as exc:  # fastjsonschema.JsonSchemaException
            raise InvalidIncomingEvent(
                f"{raw.api_name}.{raw.event_name}: parameters do not match the schema: {getattr(exc, 'message', exc)}"
            ) from None

    def structure(self, raw: RawEvent, binding: "EventBinding") -> dict[str, Any]:
        """The handler's keyword arguments, cast by ``binding`` (when the API's
        ``cast_values`` is on). Raises ``InvalidIncomingEvent``."""
        return binding.structure(raw, self._api_config(raw.api_name).cast_values)
