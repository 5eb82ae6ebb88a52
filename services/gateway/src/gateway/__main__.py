"""``python -m gateway``: run the API gateway."""

from cello_telemetry.serve import serve

from .app import create_app
from .settings import Settings

serve(Settings.from_env, create_app)
