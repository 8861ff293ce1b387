"""Seeded hashing and the text pools the synthetic creators and videos draw from.

Names and captions mix emoji, accents and non-Latin scripts on purpose: the pipeline must carry
them to the warehouse and the CRM unharmed.
"""

from __future__ import annotations

import hashlib

MAX_TEXT_CHARS = 150  # TikTok's documented maximum for title and video_description

# (display name, username stem). Most entries are non-ASCII so any five consecutive accounts
# include emoji and non-Latin scripts whatever the seed.
CREATORS: tuple[tuple[str, str], ...] = (
    ("Café Tōkyō 🍜", "cafe.tokyo"),
    ("Алина ✨", "alina.sparkle"),
    ("محمد", "mohammed.cooks"),
    ("李小龙 🐉", "xiaolong.dragon"),
    ("Sam Rivera", "samrivera"),
    ("Zoë Ødegaard", "zoe.odegaard"),
    ("김민지 🎧", "minji.beats"),
    ("Priya Sharma 🌸", "priya.blooms"),
    ("Ngọc Trâm", "ngoctram"),
    ("Mateo 🇦🇷", "mateo.ar"),
    ("Ελένη", "eleni.gr"),
    ("Olu Adé 🎤", "olu.sings"),
)

BIOS: tuple[str, ...] = (
    "Ramen, records and rooftops 🍜🎶",
    "Москва → Берлин ✈️ | танцы каждый день",
    "طبخ منزلي سهل 🍲",
    "功夫 · 茶 · 日常 🐉",
    "Small business tips every Tuesday 📈",
    "Vinterbad og kaffe ☕️❄️",
    "매일 새로운 비트 🎧",
)

TITLES: tuple[str, ...] = (
    "Morning ramen run 🍜",
    "東京の夜景がきれいすぎる",
    "Рецепт борща за 15 минут",
    "وصفة سريعة للعشاء",
    "一日一善 🐉",
    "Dance challenge 💃 #fyp",
    "Latte art tutorial ☕",
    "Crème brûlée at 3 a.m. 🍮",
    "Αθήνα στο ηλιοβασίλεμα 🌅",
    "सुबह की सैर 🌄",
    "Behind the scenes 🎬",
    "Q&A — your questions, answered",
    "Thử thách 30 ngày 🔥",
    "오늘의 브이로그 📷",
)

HASHTAGS: tuple[str, ...] = (
    "#fyp",
    "#foryou",
    "#料理",
    "#танцы",
    "#طبخ",
    "#vlog",
    "#café",
    "#일상",
    "#tutorial",
    "#ai",
)


def seeded_int(seed: int, *parts: object) -> int:
    """A stable 64-bit number for (seed, parts); unlike hash(), identical across processes."""
    material = ":".join(str(part) for part in (seed, *parts)).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(), "big")


def seeded_hex(seed: int, *parts: object, length: int = 32) -> str:
    material = ":".join(str(part) for part in (seed, *parts)).encode("utf-8")
    return hashlib.blake2b(material, digest_size=(length + 1) // 2).hexdigest()[:length]


def pick(options: tuple[str, ...], seed: int, *parts: object) -> str:
    return options[seeded_int(seed, *parts) % len(options)]


def clip(text: str) -> str:
    """Cut to TikTok's 150-character maximum (code points, so no emoji is split in half)."""
    return text[:MAX_TEXT_CHARS].rstrip()


def seeded_rolls(seed: int, *parts: object, count: int) -> tuple[int, ...]:
    """`count` independent 32-bit numbers from one hash (cheaper than one hash each)."""
    material = ":".join(str(part) for part in (seed, *parts)).encode("utf-8")
    digest = hashlib.blake2b(material, digest_size=4 * count).digest()
    return tuple(int.from_bytes(digest[at : at + 4], "big") for at in range(0, 4 * count, 4))


def caption(seed: int, account: int, index: int) -> tuple[str, str]:
    """(title, video_description) of one video, both at most 150 characters."""
    rolls = seeded_rolls(seed, "caption", account, index, count=7)
    title, second = TITLES[rolls[0] % len(TITLES)], TITLES[rolls[1] % len(TITLES)]
    tags = " ".join(HASHTAGS[roll % len(HASHTAGS)] for roll in rolls[3 : 4 + rolls[2] % 4])
    description = f"{title} — {second} {tags}"
    # Every 9th caption is long, so truncation at the 150-character limit is exercised.
    if index % 9 == 4:
        description = f"{description} {' '.join(TITLES)}"
    return clip(title), clip(description)


def edited_caption(seed: int, account: int, index: int, day: int) -> str:
    """The caption a creator rewrites on churn day `day` (advance_days): new text, same scripts."""
    rolls = seeded_rolls(seed, "edit", account, index, day, count=3)
    title = TITLES[rolls[0] % len(TITLES)]
    tags = f"{HASHTAGS[rolls[1] % len(HASHTAGS)]} {HASHTAGS[rolls[2] % len(HASHTAGS)]}"
    return clip(f"{title} (edited, day {day}) {tags}")
