"""Pure image code: arrays in, dataclasses out. Never touches a database, the network or Flask."""
