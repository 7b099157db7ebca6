"""The API of the Flask app in flask_app.py (shared with the test that fires to it)."""

from lightbus_sync import Api, Event, Parameter


class WebApi(Api):
    user_signed_up = Event(parameters=(Parameter("username", str),))

    class Meta:
        name = "runner_test_web"
