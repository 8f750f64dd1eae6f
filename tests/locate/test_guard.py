"""What a phone reports about itself (a seat, a GPS fix, a recording) is taken only from the pixel
itself, and only while it can be located: one rule for every method."""

import pytest

from c3s.errors import Conflict, Forbidden
from c3s.locate.fusion import require_locatable
from c3s.models import Pixel, User


def _pixel(status: str) -> tuple[User, Pixel]:
    user = User(id=7, is_guest=True)
    return user, Pixel(id=1, user_id=user.id, number=12, status=status)


@pytest.mark.parametrize("status", ["joined", "located"])
def test_the_pixel_itself_may_while_it_can_be_located(status):
    user, pixel = _pixel(status)
    require_locatable(user, pixel, to="report its GPS position")


def test_another_user_an_excluded_pixel_and_one_that_left_are_refused():
    user, pixel = _pixel("joined")
    with pytest.raises(Forbidden, match="only the pixel itself may upload its recording"):
        require_locatable(User(id=8), pixel, to="upload its recording")
    pixel.status = "excluded"
    with pytest.raises(Forbidden, match="excluded from this scene by a moderator"):
        require_locatable(user, pixel, to="say which seat it sits in")
    pixel.status = "left"
    with pytest.raises(Conflict, match="pixel 12 is left and cannot be located; join the scene again"):
        require_locatable(user, pixel, to="say which seat it sits in")
