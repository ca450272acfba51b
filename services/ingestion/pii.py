"""PII redaction applied to every post before anything is stored or forwarded.

Citizens paste their contact details and, now and then, identity or card numbers into public posts;
an agency must not keep them. Each span becomes a typed placeholder so that analysts still see that
something was there. The patterns lean towards redacting: a false positive costs a number in a post,
a false negative leaks a person's data. Numbers that are plainly not personal (dates, amounts, years,
short codes) are left alone because phone numbers must have at least ten digits and card numbers
must pass the Luhn check.
"""

from __future__ import annotations

import re
from collections.abc import Callable

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
SSN = "[SSN]"
CARD = "[CARD]"

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b"
)
# 13 to 19 digits, optionally in groups separated by single spaces or dashes.
_CARD = re.compile(r"(?<![\w+.-])\d(?:[ -]?\d){12,18}(?![\w-])")
# US SSN, dashed or spaced; area 000, 666 and 9xx, group 00 and serial 0000 are never issued.
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])")
# International: +country code, then groups with optional separators and an optional (area).
_PHONE_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,6}(?!\w)")
# National: (area) or a first group followed by a separator, then groups separated by . - or space;
# an optional leading "1 " / "1-" covers North American long-distance numbers. Dotted IPv4
# addresses have the same shape and are not personal data here.
_PHONE_NATIONAL = re.compile(
    r"(?<![\w+.-])(?!\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\d))"
    r"(?:1[ .-])?(?:\(\d{2,5}\)[ .-]?|\d{2,5}[ .-])\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w-])"
)

_MIN_PHONE_DIGITS_INTERNATIONAL = 8
_MIN_PHONE_DIGITS_NATIONAL = 10
_MAX_PHONE_DIGITS = 15


def luhn_valid(digits: str) -> bool:
    """The check digit scheme of every major card network; rejects 90% of random digit strings."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _digits(span: str) -> str:
    return "".join(char for char in span if char.isdigit())


def _card(match: re.Match[str]) -> str | None:
    return CARD if luhn_valid(_digits(match.group())) else None


def _ssn(match: re.Match[str]) -> str | None:
    return SSN


def _phone_with_at_least(minimum: int) -> Callable[[re.Match[str]], str | None]:
    def judge(match: re.Match[str]) -> str | None:
        count = len(_digits(match.group()))
        return PHONE if minimum <= count <= _MAX_PHONE_DIGITS else None

    return judge


# Order matters: e-mails may contain digits, and a card number would otherwise read as a phone.
_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str | None]]] = [
    (_EMAIL, lambda _match: EMAIL),
    (_CARD, _card),
    (_SSN, _ssn),
    (_PHONE_INTERNATIONAL, _phone_with_at_least(_MIN_PHONE_DIGITS_INTERNATIONAL)),
    (_PHONE_NATIONAL, _phone_with_at_least(_MIN_PHONE_DIGITS_NATIONAL)),
]


def redact(text: str) -> tuple[str, int]:
    """Returns the text with PII replaced by placeholders, and how many spans were replaced."""
    count = 0
    for pattern, judge in _RULES:

        def replace(match: re.Match[str], judge: Callable[[re.Match[str]], str | None] = judge) -> str:
            nonlocal count
            placeholder = judge(match)
            if placeholder is None:
                return match.group()
            count += 1
            return placeholder

        text = pattern.sub(replace, text)
    return text, count
