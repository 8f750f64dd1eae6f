"""Tiny hand-written factories for tests: users with rights and tokens, scenes, pixels."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from c3s import accounts
from c3s.config import Config
from c3s.models import Permission, Pixel, Scene, User, UserPermission, utcnow

_counter = itertools.count(1)
# The apps under test read C3S_TOKEN_KEY (tests/conftest.py sets it), so tokens made here work.
TOKEN_KEY = Config.from_env().token_key_bytes()


def make_user(session, *rights: str | tuple[str, int], guest: bool = False) -> tuple[User, str]:
    """A committed user holding `rights` (a name, or (name, scene_id)), and a session token."""
    if guest:
        user = accounts.create_guest(session)
    else:
        n = next(_counter)
        user = accounts.register(session, email=f"user{n}@example.org", password="correct horse battery")
    for right in rights:
        name, scene_id = (right, None) if isinstance(right, str) else right
        permission = session.scalar(select(Permission).where(Permission.name == name))
        session.add(UserPermission(user_id=user.id, permission_id=permission.id, scene_id=scene_id))
    token, _ = accounts.issue_token(session, user, kind="device" if guest else "session", ttl_s=3600,
                                    key=TOKEN_KEY)
    session.commit()
    return user, token


def add_pixel(session, scene_id: int, number: int, *, size: tuple[float, float], xy=None,
              status: str | None = None, located_by: str = "qr", sigma: float | None = None) -> Pixel:
    """One guest's pixel row, flushed (the caller commits): located at scene position ``xy`` when
    given, else joined; ``status`` overrides (a pixel that is not located has no position)."""
    user = User(is_guest=True)
    session.add(user)
    session.flush()
    status = status or ("located" if xy is not None else "joined")
    pixel = Pixel(scene_id=scene_id, scene_width=size[0], scene_height=size[1], user_id=user.id,
                  number=number, status=status)
    if status == "located":
        pixel.x, pixel.y, pixel.sigma, pixel.confidence = float(xy[0]), float(xy[1]), sigma, 1.0
        pixel.located_by, pixel.located_at = located_by, utcnow()
    session.add(pixel)
    session.flush()
    return pixel


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def pixel_token(session, scene_id: int, number: int) -> str:
    """A new device token of the user behind pixel `number` (who alone reads its track)."""
    from c3s.models import Pixel

    pixel = session.scalar(select(Pixel).where(Pixel.scene_id == scene_id, Pixel.number == number))
    token, _ = accounts.issue_token(session, session.get(User, pixel.user_id), kind="device", ttl_s=3600,
                                    key=TOKEN_KEY)
    session.commit()
    return token


def make_scene(client, token: str, **fields) -> dict:
    body = {"name": "Stand A", "method": "qr", "width": 100.0, "height": 50.0, **fields}
    response = client.post("/api/scenes", json=body, headers=auth(token))
    assert response.status_code == 201, response.json
    return response.json


def scene_row(session, scene_id: int) -> Scene:
    session.expire_all()
    return session.get(Scene, scene_id)


def multipart(**fields) -> dict:
    """Keyword arguments for a test-client POST of a multipart form; file fields are
    (bytes, filename) pairs. Encoded in memory, so large uploads leave no temporary files."""
    import io

    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    values = {k: FileStorage(io.BytesIO(v[0]), filename=v[1]) if isinstance(v, tuple) else v
              for k, v in fields.items()}
    boundary, body = encode_multipart(values)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


QUADRANTS = [((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)),
             ((0, 255, 255), (255, 0, 255), (255, 255, 0), (0, 0, 0))]


def quadrant_frame(colors, width: int, height: int):
    """RGB frame (height, width, 3): top-left, top-right, bottom-left, bottom-right quadrants."""
    import numpy as np

    frame = np.empty((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    frame[:h, :w], frame[:h, w:], frame[h:, :w], frame[h:, w:] = colors
    return frame


def png(frame) -> bytes:
    """PNG bytes of an RGB frame."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def photo_anchors(photo, *, offset: float = 1.0) -> list[dict]:
    """A rendered crowd photo's reference codes as scene anchors, shifted by `offset` so the
    stand lies inside a scene starting at 0."""
    from c3s.vision.qrcode import parse_payload

    return [{"key": parse_payload(p).anchor_key, "x": round(x, 4) + offset, "y": round(y, 4) + offset}
            for p, (x, y) in photo.anchors.items()]


def add_photo_pixels(session, photo, *, scene_id: int, width: float, height: float) -> dict:
    """One committed guest pixel per phone of the photo that shows a pixel code of this scene;
    returns those phones by pixel number (their truth)."""
    from c3s.vision.qrcode import parse_payload

    phones = {}
    for phone in photo.phones:
        payload = parse_payload(phone.payload)
        if phone.kind != "pixel" or payload.scene_id != scene_id:
            continue
        add_pixel(session, scene_id, payload.number, size=(width, height))
        phones[payload.number] = phone
    session.commit()
    return phones


def big_crowd_stand(client, session) -> tuple[str, bytes]:
    """Scene 1 with the 192 phones of a 12 MP crowd photo (slow enough to be caught mid-task);
    returns an observer's token and the photo as JPEG."""
    import cv2

    from c3s.vision.crowd import render_crowd

    photo = render_crowd(seed=11, width=4000, height=3000, cols=16, rows=12, module_px=(3.0, 5.0),
                         n_anchors=8, scene_id=1)
    _, owner = make_user(session, "scene_admin")
    make_scene(client, owner, width=16.0, height=12.0, anchors=photo_anchors(photo))
    add_photo_pixels(session, photo, scene_id=1, width=16.0, height=12.0)
    _, observer = make_user(session, ("observer", 1))
    _, data = cv2.imencode(".jpg", photo.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return observer, data.tobytes()


def mp4_bytes(path, *, frames: int = 12, fps: float = 10.0, size: tuple[int, int] = (64, 48)) -> bytes:
    """A short mp4v clip whose frames go from black to white, written at `path`."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for index in range(frames):
        writer.write(np.full((size[1], size[0], 3), round(255 * index / max(1, frames - 1)), np.uint8))
    writer.release()
    return path.read_bytes()
