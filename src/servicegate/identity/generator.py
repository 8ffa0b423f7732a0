"""Deterministic synthetic Nordic identities for demos, tests and benchmarks.

Same `seed` and index -> same identity, on any machine. About 85 % persons and 15 % companies
from Sweden, Norway, Denmark and Finland, with national id numbers whose check digits are
valid (Luhn for Swedish personnummer/organisationsnummer, mod 11 for Norwegian
fødselsnummer/organisasjonsnummer, mod 31 for Finnish HETU, modulus 7 weights for Finnish
Y-tunnus; Danish CPR/CVR use their modulus-11 weights where they exist).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

FIRST = {
    "SE": ["Anders", "Johan", "Karl", "Erik", "Lars", "Per", "Nils", "Olof", "Mikael", "Oskar",
           "Anna", "Maria", "Karin", "Eva", "Kristina", "Lena", "Ingrid", "Sofia", "Elsa",
           "Astrid", "Åsa", "Björn", "Göran", "Maja", "Linnéa", "Sven", "Ebba", "Hugo"],
    "NO": ["Ole", "Jan", "Per", "Bjørn", "Kjell", "Lars", "Knut", "Arne", "Håkon", "Magnus",
           "Anne", "Inger", "Kari", "Marit", "Ingrid", "Liv", "Solveig", "Nora", "Ingeborg",
           "Sigrid", "Øystein", "Ragnhild"],
    "DK": ["Jens", "Peter", "Niels", "Søren", "Henrik", "Rasmus", "Mads", "Anders", "Jesper",
           "Mette", "Hanne", "Pia", "Lone", "Camilla", "Freja", "Ida", "Karen", "Signe"],
    "FI": ["Juha", "Timo", "Matti", "Kari", "Mikko", "Jari", "Antti", "Pekka", "Ville",
           "Anna", "Tuula", "Päivi", "Sari", "Aino", "Helmi", "Liisa", "Satu", "Eeva"],
}
LAST = {
    "SE": ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
           "Persson", "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Lindberg", "Lindqvist",
           "Bergström", "Lundgren", "Åberg", "Sjöberg", "Holm", "Ekström", "Wallin", "Sandberg"],
    "NO": ["Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen",
           "Kristiansen", "Jensen", "Berg", "Haugen", "Bakken", "Dahl", "Halvorsen", "Solberg",
           "Strand", "Lie", "Moen"],
    "DK": ["Nielsen", "Jensen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen",
           "Sørensen", "Rasmussen", "Jørgensen", "Petersen", "Madsen", "Kristensen", "Olsen",
           "Thomsen", "Møller"],
    "FI": ["Korhonen", "Virtanen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen", "Laine",
           "Heikkinen", "Koskinen", "Järvinen", "Lehtonen", "Lehtinen", "Saarinen", "Salminen"],
}
CITIES = {  # city, zip code prefix
    "SE": [("Stockholm", "11"), ("Göteborg", "41"), ("Malmö", "21"), ("Uppsala", "75"),
           ("Lund", "22"), ("Linköping", "58"), ("Örebro", "70"), ("Västerås", "72"),
           ("Umeå", "90"), ("Helsingborg", "25"), ("Jönköping", "55"), ("Luleå", "97")],
    "NO": [("Oslo", "0"), ("Bergen", "5"), ("Trondheim", "7"), ("Stavanger", "4"),
           ("Tromsø", "9"), ("Drammen", "3")],
    "DK": [("København", "1"), ("Aarhus", "8"), ("Odense", "5"), ("Aalborg", "9"),
           ("Esbjerg", "6")],
    "FI": [("Helsinki", "00"), ("Espoo", "02"), ("Tampere", "33"), ("Turku", "20"),
           ("Oulu", "90")],
}
STREETS = {
    "SE": ["Storgatan", "Kungsgatan", "Drottninggatan", "Skolgatan", "Järnvägsgatan",
           "Kyrkogatan", "Tegnérgatan", "Vasagatan", "Sveavägen", "Ringvägen", "Parkvägen"],
    "NO": ["Storgata", "Kirkegata", "Kongens gate", "Dronningens gate", "Skolegata",
           "Parkveien", "Bjørnstjerne Bjørnsons gate"],
    "DK": ["Østergade", "Vestergade", "Nørregade", "Søndergade", "Algade", "Strandvejen",
           "Havnegade"],
    "FI": ["Mannerheimintie", "Hämeenkatu", "Aleksanterinkatu", "Kauppakatu", "Puistokatu",
           "Rantatie"],
}
COMPANY_WORDS = ["Nord", "Fjord", "Polar", "Viking", "Granit", "Skog", "Älv", "Berg", "Sjö",
                 "Lyng", "Kvarts", "Tall", "Björk", "Havs", "Fjäll", "Sol", "Vind", "Is"]
COMPANY_KINDS = {"SE": ["AB", "Handelsbolag", "AB (publ)"], "NO": ["AS", "ASA", "DA"],
                 "DK": ["ApS", "A/S", "I/S"], "FI": ["Oy", "Oyj", "Ky"]}
COMPANY_TRADES = ["Bygg", "Konsult", "Transport", "Data", "Invest", "Fastigheter", "Handel",
                  "Energi", "Media", "Logistik", "Design", "Maskin"]
COUNTRIES = [("SE", 60), ("NO", 15), ("DK", 15), ("FI", 10)]
_COUNTRY_LIST = [c for c, w in COUNTRIES for _ in range(w)]
_HETU_CHARS = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _mod11(digits: str, weights: list[int]) -> int | None:
    rest = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11
    if rest == 11:
        return 0
    return None if rest == 10 else rest


def personal_number(country: str, born: dt.date, rng: random.Random) -> str:
    yymmdd = born.strftime("%y%m%d")
    while True:
        if country == "SE":
            serial = f"{rng.randrange(1000):03d}"
            return f"{born:%Y%m%d}-{serial}{luhn_digit(yymmdd + serial)}"
        if country == "NO":
            ddmmyy = born.strftime("%d%m%y")
            individual = f"{rng.randrange(500):03d}"
            base = ddmmyy + individual
            k1 = _mod11(base, [3, 7, 6, 1, 8, 9, 4, 5, 2])
            if k1 is None:
                continue
            k2 = _mod11(base + str(k1), [5, 4, 3, 2, 7, 6, 5, 4, 3, 2])
            if k2 is None:
                continue
            return f"{base}{k1}{k2}"
        if country == "DK":
            return f"{born:%d%m%y}-{rng.randrange(10000):04d}"
        ddmmyy = born.strftime("%d%m%y")
        individual = rng.randrange(2, 900)
        check = _HETU_CHARS[int(f"{ddmmyy}{individual:03d}") % 31]
        century = "-" if born.year < 2000 else "A"
        return f"{ddmmyy}{century}{individual:03d}{check}"


def organisation_number(country: str, rng: random.Random) -> str:
    while True:
        if country == "SE":
            base = f"55{rng.randrange(10**7):07d}"
            return f"{base[:6]}-{base[6:]}{luhn_digit(base)}"
        if country == "NO":
            base = f"9{rng.randrange(10**7):07d}"
            check = _mod11(base, [3, 2, 7, 6, 5, 4, 3, 2])
            if check is None:
                continue
            return f"{base}{check}"
        if country == "DK":
            base = f"{rng.randrange(10**6, 10**7):07d}"
            check = _mod11(base, [2, 7, 6, 5, 4, 3, 2])
            if check is None:
                continue
            return f"{base}{check}"
        base = f"{rng.randrange(10**6):07d}"
        rest = sum(int(d) * w for d, w in zip(base, [7, 9, 10, 5, 8, 4, 2], strict=True)) % 11
        if rest == 1:
            continue
        return f"{base}-{0 if rest == 0 else 11 - rest}"


def _ascii(text: str) -> str:
    table = str.maketrans({"å": "a", "ä": "a", "ö": "o", "ø": "o", "æ": "ae", "é": "e",
                           "Å": "A", "Ä": "A", "Ö": "O", "Ø": "O", "Æ": "AE", "ü": "u"})
    return text.translate(table).lower().replace(" ", "").replace("/", "")


def _address(country: str, rng: random.Random, kind: str) -> dict[str, Any]:
    city, prefix = rng.choice(CITIES[country])
    width = {"SE": 5, "NO": 4, "DK": 4, "FI": 5}[country]
    zip_code = prefix + "".join(str(rng.randrange(10)) for _ in range(width - len(prefix)))
    if country == "SE":
        zip_code = f"{zip_code[:3]} {zip_code[3:]}"
    return {
        "type": kind,
        "coAddress": None,
        "street": rng.choice(STREETS[country]),
        "houseNo": str(rng.randrange(1, 120)),
        "houseNoExtension": rng.choice([None, None, None, None, "A", "B", "lgh 1102"]),
        "zipCode": zip_code,
        "city": city,
        "stateCode": None,
        "countryCode": country,
    }


def identity(seed: int, index: int) -> dict[str, Any]:
    """The `index`-th identity of the stream for `seed` (independent of the others)."""
    rng = random.Random(f"{seed}:{index}")
    country = rng.choice(_COUNTRY_LIST)
    company = rng.random() < 0.15
    addresses = [_address(country, rng, "postal" if company else "home")]
    if rng.random() < 0.2:
        addresses.append(_address(country, rng, "billing" if company else "postal"))
    if company:
        words = rng.sample(COMPANY_WORDS, 1)[0] + rng.choice(["", "en", "ens", "ia"])
        name_text = f"{words} {rng.choice(COMPANY_TRADES)} {rng.choice(COMPANY_KINDS[country])}"
        name = {"firstName": None, "middleName": None, "lastName": None,
                "companyName": name_text, "fullName": name_text, "salutation": None,
                "nameSuffix": None}
        idnumber = organisation_number(country, rng)
        birth = None
        email_user = "info"
        domain = _ascii(words) + {"SE": ".se", "NO": ".no", "DK": ".dk", "FI": ".fi"}[country]
        jt = 2
    else:
        first = rng.choice(FIRST[country])
        middle = rng.choice(FIRST[country]) if rng.random() < 0.25 else None
        last = rng.choice(LAST[country])
        full = " ".join(p for p in (first, middle, last) if p)
        name = {"firstName": first, "middleName": middle, "lastName": last, "companyName": None,
                "fullName": full, "salutation": None, "nameSuffix": None}
        born = dt.date(1935, 1, 1) + dt.timedelta(days=rng.randrange(365 * 70))
        birth = born.isoformat()
        idnumber = personal_number(country, born, rng)
        email_user = f"{_ascii(first)}.{_ascii(last)}{rng.randrange(100)}"
        domain = rng.choice(["example.com", "example.net", "example.org"])
        jt = 1
    phone_cc = {"SE": "+46", "NO": "+47", "DK": "+45", "FI": "+358"}[country]
    return {
        "id": f"g{seed}-{index:08d}",
        "juridicalType": jt,
        "name": name,
        "addresses": addresses,
        "idnumber": idnumber,
        "emails": [f"{email_user}@{domain}"],
        "phoneNumbers": [f"{phone_cc} {rng.randrange(10**8, 10**9)}"],
        "birthDate": birth,
        "partyReferenceCode": f"PRC-{rng.randrange(10**9):09d}",
    }


def identities(count: int, seed: int = 1, start: int = 0) -> Iterator[dict[str, Any]]:
    for index in range(start, start + count):
        yield identity(seed, index)
