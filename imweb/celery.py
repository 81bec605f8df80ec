"""The Celery application: background and retry work, woken through the Redis/Valkey broker."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imweb.settings")

app = Celery("imweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
