"""C3S, the Cloud Scene Screen Service: a crowd's phones become one giant screen."""

__version__ = "0.1.0"
