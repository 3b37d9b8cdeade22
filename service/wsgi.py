"""The WSGI entry point for gunicorn: `service.wsgi:create_app()`.

gunicorn calls the factory in each worker after fork (we never preload),
so every worker opens its own connections to the store.
"""

from service.app import create_app

__all__ = ["create_app"]
