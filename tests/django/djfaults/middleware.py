"""``X-Fault: kill-after-commit``: the web process is SIGKILLed once the view has
returned (its transaction committed), before the response is sent."""

import os
import signal


def kill_after_commit(get_response):
    def middleware(request):
        response = get_response(request)
        if request.headers.get("X-Fault") == "kill-after-commit" and response.status_code < 400:
            os.kill(os.getpid(), signal.SIGKILL)
        return response

    return middleware
