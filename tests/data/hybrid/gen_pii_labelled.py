#!/usr/bin/env python3
"""Writes pii_labelled.jsonl: labelled PII examples for the detector's precision/recall test.

Deterministic (fixed seed). Values are built and validated here independently of the C++ code
(Luhn, ISO 7064 MOD 11-2, date checks written in Python), wrapped in Chinese and English
sentences, plus hard negatives that look like PII but are not (order numbers, timestamps,
version strings, Luhn-invalid cards, IDs with bad checksums or dates, MAC addresses, times).

Each line: {"text": str, "spans": [{"kind", "begin", "end", "value"}], "note": str}
with begin/end as UTF-8 byte offsets.  Run: python3 gen_pii_labelled.py > pii_labelled.jsonl
"""
import calendar
import json
import random
import sys

R = random.Random(20261121)

# ---------------------------------------------------------------- value builders


def luhn_check_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(num: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(num)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def rand_digits(n):
    return "".join(R.choice("0123456789") for _ in range(n))


CARD_PREFIXES = [("622202", 16), ("621700", 19), ("436742", 16), ("411111", 16), ("550000", 16),
                 ("378282", 15), ("601100", 16), ("353011", 16), ("622848", 19), ("955880", 19),
                 ("625965", 16), ("222300", 16)]


def card_number(valid=True):
    prefix, length = R.choice(CARD_PREFIXES)
    body = prefix + rand_digits(length - len(prefix) - 1)
    num = body + luhn_check_digit(body)
    assert luhn_ok(num)
    if not valid:
        last = int(num[-1])
        num = num[:-1] + str((last + R.randint(1, 9)) % 10)
        assert not luhn_ok(num)
    return num


def group_card(num):
    style = R.choice(["plain", "space", "dash"])
    if style == "plain":
        return num
    sep = " " if style == "space" else "-"
    if len(num) == 15:
        parts = [num[:4], num[4:10], num[10:]]
    else:
        parts = [num[i:i + 4] for i in range(0, len(num), 4)]
        if len(parts[-1]) < 3:  # 4-4-4-4-3 style for 19 digits
            parts = [num[i:i + 4] for i in range(0, 16, 4)] + [num[16:]]
    return sep.join(parts)


REGIONS = ["110101", "110105", "310104", "310115", "440305", "440106", "510107", "330106",
           "320102", "420111", "500103", "610113", "350203", "370202", "210102", "120101"]
W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def id_check(body17):
    return CHECK[sum(int(c) * w for c, w in zip(body17, W)) % 11]


def prc_id(kind="valid"):
    region = R.choice(REGIONS)
    year = R.randint(1950, 2010)
    month = R.randint(1, 12)
    day = R.randint(1, calendar.monthrange(year, month)[1])
    if kind == "bad_date":
        month = R.choice([0, 13, 14])
    if kind == "bad_region":
        region = "99" + region[2:]
    body = f"{region}{year:04d}{month:02d}{day:02d}{rand_digits(3)}"
    chk = id_check(body)
    if kind == "bad_checksum":
        chk = R.choice([c for c in CHECK if c != chk])
    return body + chk


def cn_mobile():
    return R.choice("3456789") and ("1" + R.choice("3456789") + rand_digits(9))


def phone_variant():
    m = cn_mobile()
    forms = [m, f"{m[:3]}-{m[3:7]}-{m[7:]}", f"{m[:3]} {m[3:7]} {m[7:]}", f"+86 {m}",
             f"+86-{m[:3]}-{m[3:7]}-{m[7:]}", f"+86 {m[:3]} {m[3:7]} {m[7:]}", f"0086 {m}",
             f"(+86) {m}", f"+86{m}"]
    intl = [f"+1 415 555 {rand_digits(4)}", f"+44 20 7946 {rand_digits(4)}", f"+49 30 {rand_digits(7)}",
            f"+33 1 {rand_digits(2)} {rand_digits(2)} {rand_digits(2)} {rand_digits(2)}",
            f"+81-3-{rand_digits(4)}-{rand_digits(4)}", f"+65 6{rand_digits(3)} {rand_digits(4)}",
            f"+852 9{rand_digits(3)} {rand_digits(4)}", f"+1-212-555-{rand_digits(4)}",
            f"({R.randint(2, 9)}{rand_digits(2)}) 555-{rand_digits(4)}",
            f"{R.randint(2, 9)}{rand_digits(2)}-555-{rand_digits(4)}",
            f"010-6{rand_digits(7)}", f"0755-8{rand_digits(6)}", f"021-5{rand_digits(7)}"]
    return R.choice(forms) if R.random() < 0.6 else R.choice(intl)


FIRST = ["zhang.wei", "li_na", "wang.fang", "chen.jie", "john.smith", "mary-jane", "alice", "bob.lee",
         "liu.yang+news", "zhao99", "sun.li", "hr.team", "david_o", "xiaoming2024"]
DOMAINS = ["example.com", "mail.qq.com", "163.com", "gmail.com", "company.cn", "sub.domain.org",
           "corp-mail.com.cn", "outlook.com", "uni.edu", "foxmail.com"]


def email():
    name = R.choice(FIRST)
    if R.random() < 0.3:
        name = name.capitalize()
    return f"{name}@{R.choice(DOMAINS)}"


def ipv4():
    choices = [f"192.168.{R.randint(0, 255)}.{R.randint(1, 254)}", f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}",
               f"{R.randint(1, 223)}.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}",
               f"172.{R.randint(16, 31)}.{R.randint(0, 255)}.{R.randint(1, 254)}", "8.8.8.8", "114.114.114.114"]
    return R.choice(choices)


def hexg():
    return format(R.randint(1, 0xFFFF), "x")


def ipv6():
    choices = [f"2001:db8::{hexg()}", f"fe80::{hexg()}:{hexg()}:{hexg()}:{hexg()}", "::1",
               ":".join(format(R.randint(0, 0xFFFF), "04x") for _ in range(8)),
               f"2001:0db8:85a3:0000:0000:8a2e:0370:{format(R.randint(0, 0xFFFF), '04x')}",
               f"::ffff:192.168.{R.randint(0, 255)}.{R.randint(1, 254)}", f"2408:{hexg()}:{hexg()}::{hexg()}",
               f"240e:{hexg()}:{hexg()}:{hexg()}::{hexg()}"]
    return R.choice(choices)


PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def plate():
    p = R.choice(PROVINCES) + R.choice(PLATE_LETTERS)
    r = R.random()
    if r < 0.45:
        body = rand_digits(5)
        if R.random() < 0.4:  # one or two letters mixed in
            pos = R.randint(0, 4)
            body = body[:pos] + R.choice(PLATE_LETTERS) + body[pos + 1:]
        sep = R.choice(["", "", "·", " "])
        return p + sep + body
    if r < 0.65:
        return p + R.choice("DF") + R.choice(PLATE_LETTERS + "0123456789") + rand_digits(4)
    if r < 0.8:
        return p + rand_digits(5) + R.choice("DF")
    # UK current format
    return (R.choice(PLATE_LETTERS) + R.choice(PLATE_LETTERS) + rand_digits(2) + " " +
            "".join(R.choice(PLATE_LETTERS) for _ in range(3)))


BUILDERS = {"EMAIL": email, "PHONE": phone_variant, "ID_CARD": lambda: prc_id(),
            "BANK_CARD": lambda: group_card(card_number()), "IPV4": ipv4, "IPV6": ipv6, "PLATE": plate}

TEMPLATES = {
    "EMAIL": ["请发邮件到{}，谢谢", "Contact me at {} for details.", "我的邮箱是 {}", "CC: {}; thanks",
              "邮箱:{}", "Send the report to <{}> before Friday."],
    "PHONE": ["我的手机号是{}，随时联系", "Call me on {} tomorrow.", "电话：{}", "紧急联系人 王芳 {}",
              "Phone: {} (mobile)", "客服热线{}转人工"],
    "ID_CARD": ["身份证号：{}", "My ID number is {}.", "请核对身份证{}是否正确", "证件号码 {} 已登记"],
    "BANK_CARD": ["银行卡号{}，户名张伟", "Please refund to card {} asap.", "卡号: {}", "转账到 {} 即可"],
    "IPV4": ["服务器地址是{}，端口8080", "ssh admin@{} failed", "The client IP was {}.", "登录IP：{}"],
    "IPV6": ["IPv6 地址 {} 无法访问", "Ping {} returned timeout.", "绑定地址为{}", "gateway: {}"],
    "PLATE": ["车牌号{}的车辆违停", "The car with plate {} was parked outside.", "车牌：{}，颜色白", "登记车辆 {} 已出场"],
}

NEGATIVES = [
    lambda: f"订单号 {R.choice(['2023', '2024', '2025'])}{rand_digits(12)} 已发货",
    lambda: f"Order #{R.choice(['2023', '2024'])}{rand_digits(8)} shipped",
    lambda: f"时间戳 {R.randint(1600000000000, 1799999999999)} 毫秒",
    lambda: f"timestamp={R.randint(1600000000, 1799999999)}",
    lambda: f"Released version {R.randint(0, 9)}.{R.randint(0, 30)}.{R.randint(0, 99)} today",
    lambda: f"升级到 v{R.randint(1, 4)}.{R.randint(0, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)} 版本",
    lambda: f"Windows build 10.0.{R.randint(19041, 22631)}.{R.randint(100, 4000)}",
    lambda: f"卡号 {group_card(card_number(valid=False))} 无效",
    lambda: f"Card {card_number(valid=False)} was declined (invalid number)",
    lambda: f"身份证 {prc_id('bad_checksum')} 校验失败",
    lambda: f"ID {prc_id('bad_date')} has an impossible date",
    lambda: f"编号 {prc_id('bad_region')}",
    lambda: f"会议时间 {R.randint(2020, 2026)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d} {R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}",
    lambda: f"MAC {':'.join(format(R.randint(0, 255), '02X') for _ in range(6))}",
    lambda: f"use std::vector and std::map here",
    lambda: f"比例 16:9，时长 {R.randint(1, 12)}:{R.randint(10, 59)}",
    lambda: f"npm install lodash@4.17.{R.randint(0, 21)}",
    lambda: f"@{R.choice(FIRST).split('.')[0]} 请看一下",
    lambda: f"邮件发给 admin@localhost 即可",
    lambda: f"价格 {R.randint(100, 9999)}.{R.randint(0, 99):02d} 元",
    lambda: f"ISBN 978-7-{R.randint(100, 999)}-{R.randint(10000, 99999)}-{R.randint(0, 9)}",
    lambda: f"uuid 550e8400-e29b-41d4-a716-{rand_digits(12)}",
    lambda: f"快递单号 SF{rand_digits(12)}",
    lambda: f"tracking 94001{rand_digits(17)}",
    lambda: f"错误码 0x{format(R.randint(0, 2**32 - 1), '08X')}",
    lambda: f"IP 256.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(0, 255)} 不合法",
    lambda: f"section 1.2.3.4.5 of the spec",
    lambda: f"号码 12{rand_digits(9)} 不存在",
    lambda: f"流水号 {rand_digits(1).replace('0', '1')}{rand_digits(23)}",
    lambda: f"京A 是北京的代码, plate 粤B1234 is incomplete",
    lambda: f"编号 沪A{rand_digits(6)} 不是车牌",
    lambda: f"Model GT40 rocks, ISO 9001 certified",
    lambda: f"The result was 42 and the room is 301.",
    lambda: f"commit 3f2a{rand_digits(4)}c9 fixes it",
]


# Realistic forms the scanners are not built for (full-width digits, glued prefixes, plate
# suffixes) or that test boundaries; labelled as a person would, whatever the detector does.
EDGE = [
    ("手机１３８１２３４５６７８", [("PHONE", "１３８１２３４５６７８")]),
    ("tel13812345678", [("PHONE", "13812345678")]),
    ("身份证号１１０１０５１９４９１２３１００２Ｘ", [("ID_CARD", "１１０１０５１９４９１２３１００２Ｘ")]),
    ("车牌号粤Ｂ８８８８８", [("PLATE", "粤Ｂ８８８８８")]),
    ("Mail ZHANG.WEI@EXAMPLE.COM now", [("EMAIL", "ZHANG.WEI@EXAMPLE.COM")]),
    ("connect to 10.0.0.1:8080 then", [("IPV4", "10.0.0.1")]),
    ("教练车粤B1234学", [("PLATE", "粤B1234学")]),
    ("[2001:db8::1]:443 is the endpoint", [("IPV6", "2001:db8::1")]),
    ("电话: 138 1234 5678。卡: 6222 0200 0000 0000 009", [("PHONE", "138 1234 5678")]),
    ("ID:11010519491231002X,tel:+86 139 0000 1111", [("ID_CARD", "11010519491231002X"), ("PHONE", "+86 139 0000 1111")]),
    ("version 13812345678-beta build", []),
    ("IP段 192.168.0.0/16 内网", [("IPV4", "192.168.0.0")]),
]


def spans_for(text, items):
    """items: list of (kind, value) in order of appearance; computes byte offsets."""
    out = []
    pos_chars = 0
    for kind, value in items:
        idx = text.index(value, pos_chars)
        begin = len(text[:idx].encode("utf-8"))
        out.append({"kind": kind, "begin": begin, "end": begin + len(value.encode("utf-8")), "value": value})
        pos_chars = idx + len(value)
    return out


def main():
    rows = []
    for kind, builder in BUILDERS.items():
        for _ in range(42):
            v = builder()
            text = R.choice(TEMPLATES[kind]).format(v)
            rows.append({"text": text, "spans": spans_for(text, [(kind, v)]), "note": "single"})
    for _ in range(50):  # several kinds in one text
        kinds = R.sample(list(BUILDERS), R.randint(2, 3))
        items = [(k, BUILDERS[k]()) for k in kinds]
        parts = []
        for k, v in items:
            parts.append(R.choice(TEMPLATES[k]).format(v))
        text = R.choice(["；", " ", "。", ", and "]).join(parts)
        rows.append({"text": text, "spans": spans_for(text, items), "note": "mixed"})
    for _ in range(4):
        for neg in NEGATIVES:
            rows.append({"text": neg(), "spans": [], "note": "hard_negative"})
    for text, items in EDGE:
        rows.append({"text": text, "spans": spans_for(text, items), "note": "edge"})
    R.shuffle(rows)
    for r in rows:
        sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
