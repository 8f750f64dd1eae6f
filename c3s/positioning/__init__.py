"""Pure positioning code: where a pixel phone is on the scene plane without a camera.

Three location methods live here, each as plain functions with dataclasses in and out (no database,
network or Flask; the web API and the Celery tasks call them):

- `c3s.positioning.seats` — seat maps (CSV/JSON import with line-numbered errors, lookup with
  suggestions for typos) and the snapping of camera-found positions to seats by one global
  assignment;
- `c3s.positioning.geo` — a scene's geo-reference and the projection of GPS fixes (WGS84) into scene
  coordinates through a local tangent plane, with validation of the reported accuracy;
- `c3s.positioning.sound` — chirps played by the venue's speakers on a server-clock schedule, a
  seeded simulator of what a phone records, and the time-difference-of-arrival solver.

All coordinates are scene units unless a name says otherwise (`_m` for metres, `_ms` for
milliseconds).
"""
