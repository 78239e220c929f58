"""Incremental text for one request: streaming detokenizer plus stop strings.

Text that might be the start of a stop string is held back until it is known not to be, so a
client never sees a stop sequence, not even half of one.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # any object with add_token/finalize/last_segment will do (llama_text's too)
    from mlx_lm.tokenizer_utils import StreamingDetokenizer


class TextStream:
    def __init__(self, detokenizer: "StreamingDetokenizer", stop: list[str] | None = None):
        self._detok = detokenizer
        self._stops = [s for s in (stop or []) if s]
        self._held = ""
        self.stopped = False  # a stop string completed; nothing more will be emitted
        self.stopped_by: str | None = None  # which stop string (the earliest in the text)

    def add(self, token: int) -> str:
        """Consume one generated token; return the text now safe to emit."""
        if self.stopped:
            return ""
        self._detok.add_token(token)
        return self._push(self._detok.last_segment)

    def finish(self) -> str:
        """End of generation (EOS or length): flush what the detokenizer and we held back."""
        if self.stopped:
            return ""
        self._detok.finalize()
        text = self._push(self._detok.last_segment)
        if self.stopped:
            return text
        text, self._held = text + self._held, ""
        return text

    def _push(self, segment: str) -> str:
        buf = self._held + segment
        # Held text never contains a whole stop string, so searching all of buf is exact.
        hits = [(i, s) for s in self._stops if (i := buf.find(s)) >= 0]
        if hits:
            (at, self.stopped_by), self.stopped, self._held = min(hits), True, ""
            return buf[:at]
        keep = self._partial_suffix(buf)
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep]

    def _partial_suffix(self, buf: str) -> int:
        """Length of the longest suffix of buf that begins some stop string."""
        best = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(buf)), best, -1):
                if buf.endswith(stop[:k]):
                    best = k
                    break
        return best
