"""What a clinic's name or a token's label may contain, and how a terminal is shown one.

Names and labels are shown to people: on dashboards, in the access log, in
`traction clinics list`. A newline there prints a fake row; a right-to-left
override or a zero-width character makes one name look like another. So they
hold printable text only: no control characters (newlines, tabs, escapes), no
format characters (the bidirectional controls, zero-width spaces and joiners,
the byte order mark), no line or paragraph separators, no private-use,
surrogate or unassigned code points. Spaces are fine, but not at either end.

What was stored before this rule (or put in behind the service's back) is
still shown safely: `escaped` writes every such character as a `\\u` escape.
"""

from __future__ import annotations

import unicodedata

#: Unicode general categories a name or label may not contain: controls (Cc),
#: format characters (Cf: bidi controls, zero-width characters), surrogates (Cs),
#: private use (Co), unassigned (Cn), line and paragraph separators (Zl, Zp).
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def unsafe(character: str) -> bool:
    return unicodedata.category(character) in UNSAFE_CATEGORIES


def why_not_shown_text(text: str) -> str | None:
    """None if `text` is printable text as defined above, else why not (naming the
    first character that is not, by its code point)."""
    for character in text:
        if unsafe(character):
            name = unicodedata.name(character, "")
            found = f"U+{ord(character):04X}" + (f" {name}" if name else "")
            return ("must be printable text, without control, format or invisible "
                    f"characters (found {found})")
    if text != text.strip():
        return "must not begin or end with a space"
    return None


def escaped(text: str) -> str:
    """`text` safe to print on one line of a terminal: every unsafe character (and a
    backslash, so that an escape cannot be faked) written as an escape."""
    return "".join(
        "\\\\" if character == "\\"
        else f"\\u{ord(character):04x}" if unsafe(character) or not character.isprintable()
        and character != " "
        else character
        for character in text)
