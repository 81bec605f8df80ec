"""Room events in the numbered history: `Message.kind` (message, or event: "alice invited bob") and `event`,
what happened for programs. On SQLite the new column rebuilds chat_message; chat.search puts its triggers back."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_moderation"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="event",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="kind",
            field=models.CharField(
                choices=[("message", "Message"), ("event", "Room event")], default="message", max_length=8
            ),
        ),
    ]
