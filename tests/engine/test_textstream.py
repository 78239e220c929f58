"""Stop strings over a streaming detokenizer: never emit a stop string, not even half of one."""

from skulk.engine.textstream import TextStream


class CharDetokenizer:
    """A stand-in detokenizer: token i is chr(i); everything is final at once."""

    def __init__(self):
        self.text, self.offset = "", 0

    def add_token(self, token):
        self.text += chr(token)

    def finalize(self):
        pass

    @property
    def last_segment(self):
        seg, self.offset = self.text[self.offset :], len(self.text)
        return seg


def feed(text: str, stop: list[str]) -> tuple[list[str], TextStream]:
    ts = TextStream(CharDetokenizer(), stop)
    pieces = []
    for ch in text:
        pieces.append(ts.add(ord(ch)))
        if ts.stopped:
            break
    if not ts.stopped:
        pieces.append(ts.finish())
    return pieces, ts


def test_stop_string_is_cut_and_never_partially_emitted():
    pieces, ts = feed("hello END world", ["END"])
    assert ts.stopped and "".join(pieces) == "hello "
    assert all("E" not in p for p in pieces)


def test_a_false_start_is_released_once_it_cannot_match():
    pieces, ts = feed("abENxENDz", ["END"])
    assert "".join(pieces) == "abENx" and ts.stopped
    assert pieces[2:4] == ["", ""]  # "E", "N" were held back


def test_held_text_is_flushed_at_the_end():
    pieces, ts = feed("abcEN", ["END"])
    assert not ts.stopped and "".join(pieces) == "abcEN" and pieces[-1] == "EN"


def test_earliest_of_several_stops_wins():
    pieces, ts = feed("xx--yy::zz", ["::", "--"])
    assert "".join(pieces) == "xx"


def test_no_stops_streams_every_character():
    pieces, _ = feed("abc", [])
    assert pieces == ["a", "b", "c", ""]
