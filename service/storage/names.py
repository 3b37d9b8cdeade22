"""What a clinic's name or a token's label may contain, and how a terminal is shown one.

Names and labels are shown to people: on dashboards, in the access log, in
`traction clinics list`. A newline there prints a fake row; a right-to-left
override or a zero-width character makes one name look like another. So they
hold printable text only, with no space at either end, and none of:

- control characters, U+0000-001F and U+007F-009F (newline, tab, escape, ...);
- line and paragraph separators, U+2028-2029;
- the bidirectional controls: marks (U+200E-200F, U+061C), embeddings and
  overrides (U+202A-202E), isolates (U+2066-2069);
- invisible characters: the soft hyphen (U+00AD), the Mongolian vowel
  separator (U+180E), zero-width spaces, joiners and non-joiners
  (U+200B-200D), the word joiner and invisible operators (U+2060-2065,
  U+206A-206F), the byte order mark (U+FEFF), interlinear annotation
  (U+FFF9-FFFB).

Every script is fine. The rule is one regular expression, `SHOWN_TEXT`, which
the API's validation and its OpenAPI document (as the field's `pattern`)
share, so a client can check a name before sending it.

What was stored before this rule (or put in behind the service's back) is
still shown safely: `escaped` writes every control, format or other
invisible character as a `\\u` escape.
"""

from __future__ import annotations

import re
import unicodedata

#: The forbidden characters, as the ranges above (a regular-expression class body).
FORBIDDEN = ("\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u061c\\u180e\\u200b-\\u200f"
             "\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb")
#: A name or label: none of them, and no white space at either end. Written so that
#: Python and ECMAScript (an OpenAPI `pattern`) read it alike.
SHOWN_TEXT_PATTERN = f"^(?!\\s)(?!.*\\s$)[^{FORBIDDEN}]*$"
SHOWN_TEXT = re.compile(SHOWN_TEXT_PATTERN, re.DOTALL)
_FORBIDDEN = re.compile(f"[{FORBIDDEN}]")

#: Unicode general categories the terminal is shown escaped: controls (Cc), format
#: characters (Cf), surrogates (Cs), private use (Co), unassigned (Cn), separators
#: other than the space (Zl, Zp).
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def why_not_shown_text(text: str) -> str | None:
    """None if `text` may be a name or label, else why not (naming the first
    forbidden character by its code point)."""
    if SHOWN_TEXT.fullmatch(text):
        return None
    found = _FORBIDDEN.search(text)
    if found is None:
        return "must not begin or end with a space"
    character = found.group()
    name = unicodedata.name(character, "")
    return ("must be printable text, without control, bidirectional or invisible "
            f"characters (found U+{ord(character):04X}{' ' + name if name else ''})")


def unsafe(character: str) -> bool:
    return unicodedata.category(character) in UNSAFE_CATEGORIES or bool(
        _FORBIDDEN.fullmatch(character))


def escaped(text: str) -> str:
    """`text` safe to print on one line of a terminal: every unsafe character (and a
    backslash, so that an escape cannot be faked) written as an escape."""
    return "".join(
        "\\\\" if character == "\\"
        else (f"\\u{ord(character):04x}" if ord(character) <= 0xFFFF
              else f"\\U{ord(character):08x}") if unsafe(character)
        or (not character.isprintable() and character != " ")
        else character
        for character in text)
