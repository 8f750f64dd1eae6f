"""A set of colour maps is named by everything it depends on, so a stale map is never asked for."""

from c3s.show import cache_key, latest_key, maps_version, pending_key, version_order

BASE = {"scene_id": 5, "created_us": 1_700_000_000_000_000, "layout_version": 3, "frames_version": 2,
        "fit": "contain", "width": 100.0, "height": 50.0}


def test_every_input_changes_the_version():
    base = maps_version(**BASE)
    assert base.startswith("3.2.")
    changes = {"scene_id": 6, "created_us": BASE["created_us"] + 1, "layout_version": 4, "frames_version": 3,
               "fit": "stretch", "width": 100.5, "height": 49.0}
    versions = {name: maps_version(**{**BASE, name: value}) for name, value in changes.items()}
    assert base not in versions.values() and len(set(versions.values())) == len(changes)
    assert maps_version(**BASE) == base  # and nothing else does


def test_versions_order_by_layout_then_frames():
    assert version_order("3.10.ffff") > version_order("3.9.0000") and version_order("4.0.a") > version_order("3.99.b")


def test_keys_are_per_scene_and_version():
    assert cache_key(5, "3.2.ab", "map:0") == "c3s:show:5:3.2.ab:map:0"
    assert pending_key(5) == "c3s:show:5:build-pending" and latest_key(5) == "c3s:show:5:latest"
