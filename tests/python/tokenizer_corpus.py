"""Deterministic (seeded) corpus of varied strings for tokenizer comparisons.

corpus(n, seed) returns n strings mixing whitespace runs, CJK, emoji (ZWJ sequences, skin
tones, flags), code, numbers, several scripts, combining marks, punctuation, contractions,
long words and special-token look-alikes. Only characters assigned long ago are used, so the
Unicode tables of Python, Oniguruma (HF tokenizers) and the engine agree on them.
"""
import random

WORDS = ("the quick brown fox jumps over lazy dog hello world tokenizer model inference engine "
         "edge device memory cache attention layer token vocabulary merge byte unicode "
         "International naïve café résumé coöperate façade jalapeño Straße Ærøskøbing").split()
CONTRACTIONS = ["I'm", "you're", "we've", "they'll", "he'd", "it's", "don't", "can't", "'S",
                "'LL", "'Re", "'VE", "'M", "'D", "'t", "y'all", "o'clock", "rock'n'roll", "' s",
                "''", "'''", "'s's"]
CJK = ["你好，世界！", "我想在苹果工作", "機械学習はとても面白い。", "東京都庁", "한국어 텍스트입니다",
       "中文字符测试", "ひらがなとカタカナ", "全角　スペース", "漢字かな交じり文", "《三国演义》"]
SCRIPTS = ["Привет, как дела?", "Γειά σου Κόσμε", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
           "สวัสดีชาวโลก", "ព្រះអាទិត្យ", "ሰላም ልዑል", "Բարեւ աշխարհ", "გამარჯობა",
           "বাংলা লেখা", "தமிழ் மொழி", "Tiếng Việt có dấu", "Türkçe ğüşıöç", "Ελληνικά αβγ"]
EMOJI = ["😀", "🚀", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "1️⃣", "❤️", "✅",
         "🤷🏿‍♀️", "🧑🏻‍🤝‍🧑🏾", "🙂🙃", "☕", "🎉🎉🎉", "👋🏻", "🦄", "💯", "⚡"]
CODE = ["def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
        "if x == 1:\n\tprint('one')\nelse:\n\tpass", "{\"key\": [1, 2.5, null, true]}",
        "<div class=\"a\">Hi &amp; bye</div>", "SELECT * FROM users WHERE id = 42;",
        "x=>x*2; // arrow", "#include <stdio.h>\nint main(void){return 0;}",
        "    indented\n        more\n\t\ttabs", "a_b__c___d", "camelCaseIdentifier123",
        "https://example.com/path?q=1&r=2#frag", "$HOME/.config/app.yaml", "C:\\Windows\\path",
        "0x1F600 0b1010 1e-9 3.14159f", "```python\nprint(1)\n```", "a != b && c <= d || !e",
        "std::vector<int32_t> v{1,2,3};", "@decorator\nclass A(B):", "-- comment\n/* block */"]
NUMBERS = ["0", "7", "42", "123", "1234", "12345", "1234567890", "3.14159", "1,000,000",
           "-273.15", "1e10", "2024-05-09", "12:30:45", "+1 (555) 010-9999", "٣٤٥", "१२३",
           "½ ¾ ⅓", "Ⅻ ⅷ", "x² + y³", "①②③", "９８７", "0.000001", "99%", "$5.99", "€10,50"]
PUNCT = ["!!!", "...", "?!", "—", "–", "«quoted»", "„deutsch“", "“smart”", "‘single’", "…",
         "(((", ")))", "[]{}<>", "@#$%^&*", "~`|\\", ";;", "::", "¿Qué?", "¡Hola!", "、。・"]
MARKS = ["e\u0301", "a\u0308", "n\u0303", "Z\u0351\u0357\u036e\u0300", "क्षि", "ó", "ǹ",
         "o\u0302\u0323", "\u0301start", "x\u20d7", "के", "ि", "\u0670"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t\t", "\u00a0",
          "\u3000", "\u2009", "\u200b", "\u2028", "\x0b", "\x0c", "\x1c", "\x1f", "\x85",
          "\u202f", "      "]
SPECIAL_LOOKALIKES = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<end_of_turn>",
                      "<start_of_turn>user", "<bos>", "<eos>", "<pad>", "<unk>", "<s>", "</s>",
                      "[multimodal]", "<0x41>", "▁", "▁▁x", "<|", "|>"]
ODD = ["\u00ad", "\u200d", "\ufeff", "\ufffd", "\u2581hello", "ﬁ", "Å", "K", "ſ", "İ", "ß",
       "\u0000", "\x7f", "\x01", "ǅ"]

# Well-established code point blocks for random text (assigned before Unicode 10).
RANDOM_RANGES = [(0x20, 0x7E), (0xA0, 0x17F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF),
                 (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE5B), (0x1100, 0x11FF),
                 (0x2000, 0x206F), (0x20A0, 0x20BF), (0x2190, 0x21FF), (0x2200, 0x22FF),
                 (0x2500, 0x257F), (0x3040, 0x30FF), (0x4E00, 0x9FA5), (0xAC00, 0xD7A3),
                 (0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x0300, 0x036F)]


def _random_char(rng: random.Random) -> str:
    lo, hi = rng.choice(RANDOM_RANGES)
    return chr(rng.randint(lo, hi))


def _long_word(rng: random.Random) -> str:
    n = rng.randint(20, 200)
    alphabet = rng.choice(["abcdefghijklmnopqrstuvwxyz", "aeiou", "xyz", "абвгдежзий",
                           "αβγδεζηθ", "あいうえおかきくけこ", "0123456789", "ab1"])
    return "".join(rng.choice(alphabet) for _ in range(n))


def _piece(rng: random.Random) -> str:
    kind = rng.randrange(14)
    if kind == 0:
        return rng.choice(WORDS)
    if kind == 1:
        return rng.choice(CONTRACTIONS)
    if kind == 2:
        return rng.choice(CJK)
    if kind == 3:
        return rng.choice(SCRIPTS)
    if kind == 4:
        return "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3)))
    if kind == 5:
        return rng.choice(CODE)
    if kind == 6:
        return rng.choice(NUMBERS)
    if kind == 7:
        return rng.choice(PUNCT)
    if kind == 8:
        return rng.choice(MARKS)
    if kind == 9:
        return "".join(rng.choice(SPACES) for _ in range(rng.randint(1, 4)))
    if kind == 10:
        return rng.choice(SPECIAL_LOOKALIKES)
    if kind == 11:
        return rng.choice(ODD)
    if kind == 12:
        return _long_word(rng)
    return "".join(_random_char(rng) for _ in range(rng.randint(1, 12)))


def _fixed() -> list:
    """Hand-picked edge cases that every run includes."""
    out = ["", " ", "  ", "\n", "\t", "a", "Hello world", " Hello world", "Hello  world",
           "Hello world ", "Hello world  ", "   leading", "trailing   ", "\n\nHello\n\n",
           "I'm here, you're there, we'll see.", "'s", "''s", "Don'T", "1 2 3", "12 345 6789",
           "a1b2c3", "x  1", " 1", "\u00a0word", "word\u00a0", " \u00a0x", "e\u0301t\u0301e\u0301",
           "👨‍👩‍👧‍👦 family", "👍🏽👍🏿", "🇫🇷🇩🇪", "\r\n\r\n", "a\r\nb", "tab\there",
           "<|im_start|>user\nhi<|im_end|>", "<start_of_turn>model\n", "\x1c\x1d\x1e\x1f",
           "!!!!!!", "...", "a.b.c", "Ⅻ½²", "٣٤٥ ١٢", "naïve café", "ſt", "ǅemal", "\u2581x"]
    out += SPACES + CJK + SCRIPTS + EMOJI + CODE + NUMBERS + PUNCT + MARKS + CONTRACTIONS + ODD
    return out


def corpus(n: int = 1200, seed: int = 1234) -> list:
    rng = random.Random(seed)
    out = _fixed()
    while len(out) < n:
        parts = [_piece(rng) for _ in range(rng.randint(1, 8))]
        glue = rng.choice(["", " ", " ", "\n", "  ", "\t"])
        out.append(glue.join(parts))
    return out[:max(n, len(_fixed()))]


if __name__ == "__main__":
    import json
    for s in corpus(20):
        print(json.dumps(s, ensure_ascii=False))
