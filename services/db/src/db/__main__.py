"""``python -m services.db``: run the database proxy."""

from services.serve import serve

from .app import create_app
from .settings import Settings

serve(Settings.from_env, create_app)
