"""imweb: an open instant-messaging service that federates over XMPP."""

from imweb.celery import app as celery_app

__all__ = ["celery_app"]
