import pytest

from controller.domain import resources


@pytest.mark.parametrize(
    "text", ["host/a/../b", "host/a//b", "host/a/./b", "host/a/", "service/web/.."]
)
def test_keys_with_dot_dot_or_empty_segments_are_refused(text):
    """A resource key with an empty, '.' or '..' segment is refused with a message naming the problem."""
    with pytest.raises(ValueError, match="segment"):
        resources.parse_resource_key(text)


@pytest.mark.parametrize("text", ["host/db-1", "k8s.pod/ns/web-7f", "service/a.b/c..d", "x/a/..b"])
def test_keys_with_ordinary_segments_are_accepted(text):
    """Dots inside a segment and '/'-separated names are ordinary keys."""
    assert resources.parse_resource_key(text) == text
