"""Where observations become positions: each method turns an upload into sightings of pixels
(`qr`, `blink`, ...), `fusion` records them and fuses every pixel's position, and `jobs` runs an
upload's job from queued to done or failed."""
