"""Helpers the tests share: factories of rows and requests, services, worker processes."""
