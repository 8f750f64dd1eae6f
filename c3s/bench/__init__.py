"""Benchmarks behind `c3s bench NAME`: each module exposes a click command named `command`."""

BENCHMARKS = {
    "qr": "c3s.bench.qr:command",
    "blink": "c3s.bench.blink:command",
    "colormap": "c3s.bench.colormap:command",
    "api": "c3s.bench.api:command",
    "join": "c3s.bench.join:command",
    "seats": "c3s.bench.seats:command",
    "sound": "c3s.bench.sound:command",
    "locate": "c3s.bench.locate:command",
    "clock": "c3s.bench.clock:command",
    "login": "c3s.bench.login:command",
    "seatmap": "c3s.bench.seatmap:command",
    "all": "c3s.bench.all:command",
}
