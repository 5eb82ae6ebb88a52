"""``python -m services.gateway``: run the API gateway."""

from services.serve import serve

from .app import create_app
from .settings import Settings

serve(Settings.from_env, create_app)
