"""``python -m gateway``: run the API gateway."""

from cello_runner import exit_on_config_error, serve

from .app import create_app
from .settings import Settings

with exit_on_config_error():
    settings = Settings.from_env()
    app = create_app(settings)
serve(app, host=settings.host, port=settings.port)
