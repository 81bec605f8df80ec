"""The operator's dashboard at /dashboard/: health and trends, federation policy, moderation, reports and the
audit log, for staff; and /metrics for monitoring systems."""
