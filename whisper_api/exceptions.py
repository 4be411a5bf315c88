"""Errors the API turns into JSON ``{"error": ...}`` answers."""
from __future__ import annotations


class ApiError(Exception):
    """An error with the HTTP status it should be answered with."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class TooBusy(ApiError):
    """The queue is full: try again after ``retry_after`` seconds."""

    status = 429
    retry_after = 30


class Unavailable(ApiError):
    status = 503


class JobFailed(Exception):
    """A job cannot be completed; the message is shown to the user as the job's error."""
