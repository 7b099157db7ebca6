"""The incoming decoder: a stream entry's fields to a handler's keyword arguments.

Three steps, used by the runner and by the testing helpers alike:
``decode`` (wire rules; ``MalformedEntry``), ``validate`` (against the event's schema
when ``validate.incoming`` is on; ``InvalidIncomingEvent``) and ``structure`` (the
listener's casts; ``InvalidIncomingEvent`` naming the parameter). ``parameters`` does
the last two, skipping the schema where it cannot refuse: for an event this process
defines, whose schema is generated from the very definition the listener is bound
to, an entry holding exactly its parameters, each of the plain type the definition
itself declares (str, int, float, bool or Any; not a type a handler's annotation
narrowed it to), passes that schema by construction. A
schema another service published is always checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from .errors import InvalidIncomingEvent
from .wire import RawEvent, decode_entry

if TYPE_CHECKING:
    from .api import EventDefinition
    from .config import ApiConfig
    from .listeners import EventBinding

Validator = Callable[[dict[str, Any]], Any]


class IncomingDecoder:
    """Decodes entries for one bus: ``api_config(name)`` gives an API's configuration,
    ``validator(api, event)`` the compiled schema validator (None if no schema),
    ``local_event(api, event)`` the definition this process has of an event whose
    schema it generates itself (None for any other; None as a whole: every schema is
    checked)."""

    def __init__(
        self,
        api_config: Callable[[str], "ApiConfig"],
        validator: Callable[[str, str], Optional[Validator]],
        local_event: Optional[Callable[[str, str], Optional["EventDefinition"]]] = None,
    ) -> None:
        self._api_config = api_config
        self._validator = validator
        self._local_event = local_event

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

    def parameters(self, raw: RawEvent, binding: "EventBinding") -> dict[str, Any]:
        """``validate`` then ``structure``, with the schema skipped where it cannot refuse
        (see the module docs). Raises ``InvalidIncomingEvent``."""
        api_config = self._api_config(raw.api_name)
        if (
            api_config.cast_values
            and self._local_event is not None
            and binding.exact_as_declared
            and self._local_event(raw.api_name, raw.event_name) is binding.definition
        ):
            kwargs = binding.exact_kwargs(raw.parameters)
            if kwargs is not None:
                return kwargs
        self.validate(raw)
        return binding.structure(raw, api_config.cast_values)
