"""Notifications to subscribers: a transactional outbox delivered by e-mail (SMTP) and SMS."""
