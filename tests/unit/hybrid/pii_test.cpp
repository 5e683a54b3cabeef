// PII detector: per-kind positives and hard negatives, overlap rules, UTF-8 safety, user
// patterns/keywords, and precision/recall on the labelled set tests/data/hybrid/pii_labelled.jsonl.
#include "hybrid/pii.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "util/error.h"

using namespace edgellm::hybrid;

namespace {

std::vector<std::pair<std::string, std::string>> found(const std::string& text, const PiiDetector& d = PiiDetector()) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& s : d.scan(text)) {
    EXPECT_EQ(text.substr(s.begin, s.end - s.begin), s.value);
    out.emplace_back(std::string(pii_kind_name(s.kind)), s.value);
  }
  return out;
}

using Hits = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST(PiiChecks, LuhnAgainstKnownNumbers) {
  EXPECT_TRUE(luhn_valid("4111111111111111"));
  EXPECT_TRUE(luhn_valid("378282246310005"));
  EXPECT_TRUE(luhn_valid("79927398713"));
  EXPECT_FALSE(luhn_valid("79927398710"));
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_FALSE(luhn_valid("41111a1111111111"));
  EXPECT_FALSE(luhn_valid(""));
}

TEST(PiiChecks, PrcIdChecksumDateAndRegion) {
  // 11010519491231002X is the checksum example from GB 11643.
  EXPECT_TRUE(prc_id_valid("11010519491231002X"));
  EXPECT_TRUE(prc_id_valid("11010519491231002x"));
  EXPECT_FALSE(prc_id_valid("110105194912310021"));  // wrong check char
  EXPECT_FALSE(prc_id_valid("990105194912310025"));  // region 99
  EXPECT_FALSE(prc_id_valid("11010519490231002X"));  // Feb 31 (checksum aside)
  EXPECT_FALSE(prc_id_valid("1101051949123100"));
}

TEST(PiiScan, Emails) {
  EXPECT_EQ(found("邮箱：zhang.wei@example.com，谢谢"), (Hits{{"EMAIL", "zhang.wei@example.com"}}));
  EXPECT_EQ(found("<Li_Na+tag@mail.qq.com>"), (Hits{{"EMAIL", "Li_Na+tag@mail.qq.com"}}));
  EXPECT_EQ(found("write to a@b.co."), (Hits{{"EMAIL", "a@b.co"}}));
  EXPECT_TRUE(found("admin@localhost and lodash@4.17.21 and @alice").empty());
  EXPECT_TRUE(found("x@-bad.com y@bad-.com z@a..com").empty());
}

TEST(PiiScan, ChineseMobilesInAllSeparatorForms) {
  for (std::string p : {"13812345678", "138-1234-5678", "138 1234 5678", "+86 13812345678",
                        "+86-138-1234-5678", "0086 13812345678", "+8613812345678", "(+86) 13812345678"}) {
    EXPECT_EQ(found("电话" + p + "谢谢"), (Hits{{"PHONE", p}})) << p;
  }
  // 12x is not a mobile prefix; 12 and 14 digit numbers are something else.
  EXPECT_TRUE(found("号码 12812345678 不存在").empty());
  EXPECT_TRUE(found("订单 138123456789 和 1381234567").empty());
  EXPECT_TRUE(found("SKU13812345678").empty());
  EXPECT_EQ(found("tel13812345678"), (Hits{{"PHONE", "13812345678"}}));
}

TEST(PiiScan, InternationalAndLandlinePhones) {
  for (std::string p : {"+1 415 555 0132", "+44 20 7946 0958", "+81-3-1234-5678", "(415) 555-0132",
                        "415-555-0132", "010-62345678", "0755-8765432", "+33 1 23 45 67 89"}) {
    EXPECT_EQ(found("call " + p + " now"), (Hits{{"PHONE", p}})) << p;
  }
  EXPECT_TRUE(found("+12 34").empty());
  EXPECT_TRUE(found("2023-11-05 13:45:00").empty());
  EXPECT_TRUE(found("ISBN 978-7-111-54742-6").empty());
}

TEST(PiiScan, IdCards) {
  EXPECT_EQ(found("身份证11010519491231002X。"), (Hits{{"ID_CARD", "11010519491231002X"}}));
  EXPECT_TRUE(found("身份证 110105194912310021").empty());
  EXPECT_TRUE(found("x11010519491231002X").empty());
}

TEST(PiiScan, BankCardsNeedLuhnAndIssuer) {
  EXPECT_EQ(found("card 4111 1111 1111 1111."), (Hits{{"BANK_CARD", "4111 1111 1111 1111"}}));
  EXPECT_EQ(found("卡号4111-1111-1111-1111"), (Hits{{"BANK_CARD", "4111-1111-1111-1111"}}));
  EXPECT_EQ(found("amex 378282246310005"), (Hits{{"BANK_CARD", "378282246310005"}}));
  EXPECT_TRUE(found("card 4111 1111 1111 1112").empty());
  // Luhn-valid epoch-millisecond timestamp (issuer prefix 1 does not exist).
  ASSERT_TRUE(luhn_valid("1700000000004"));
  EXPECT_TRUE(found("ts 1700000000004").empty());
  // 20+ digit run: no window inside it is taken.
  EXPECT_TRUE(found("流水号 41111111111111111111").empty());
}

TEST(PiiScan, IpAddresses) {
  EXPECT_EQ(found("IP 192.168.1.10, ok"), (Hits{{"IPV4", "192.168.1.10"}}));
  EXPECT_EQ(found("地址10.0.0.1。"), (Hits{{"IPV4", "10.0.0.1"}}));
  EXPECT_TRUE(found("v1.2.3.4 and 1.2.3.4.5 and 256.1.1.1 and 01.2.3.4 and 10.0.19045.3693").empty());
  EXPECT_EQ(found("ping 2001:db8::1."), (Hits{{"IPV6", "2001:db8::1"}}));
  EXPECT_EQ(found("lo ::1 up"), (Hits{{"IPV6", "::1"}}));
  EXPECT_EQ(found("v6 ::ffff:192.168.1.1 mapped"), (Hits{{"IPV6", "::ffff:192.168.1.1"}}));
  EXPECT_EQ(found("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
            (Hits{{"IPV6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"}}));
  EXPECT_TRUE(found("12:30:45 and 16:9 and 00:1A:2B:3C:4D:5E and std::vector and 1::2::3").empty());
}

TEST(PiiScan, Plates) {
  for (std::string p : {"京A12345", "粤B·8K888", "粤B1234学", "沪AD12345", "京A12345D", "苏E 5G8K2", "AB12 CDE"}) {
    EXPECT_EQ(found("车牌" + p + "的车"), (Hits{{"PLATE", p}})) << p;
  }
  EXPECT_TRUE(found("京A 是代码, 粤B1234 不完整, 沪A123456 和 京ABCDEF").empty());
  PiiConfig cfg;
  cfg.western_plates = false;
  EXPECT_TRUE(found("plate AB12 CDE", PiiDetector(cfg)).empty());
}

TEST(PiiScan, FullWidthFormsAreFolded) {
  EXPECT_EQ(found("手机１３８１２３４５６７８，谢谢"), (Hits{{"PHONE", "１３８１２３４５６７８"}}));
  EXPECT_EQ(found("邮箱ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ。"), (Hits{{"EMAIL", "ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ"}}));
  EXPECT_EQ(found("车牌京Ａ１２３４５和 IP 10.0.0.1"), (Hits{{"PLATE", "京Ａ１２３４５"}, {"IPV4", "10.0.0.1"}}));
  // Mixed: full-width digits with an ASCII separator, then an ideographic space.
  EXPECT_EQ(found("电话１３８-１２３４-５６７８　好"), (Hits{{"PHONE", "１３８-１２３４-５６７８"}}));
  EXPECT_TRUE(found("１２３４５").empty());
}

TEST(PiiScan, OverlapPrefersSpecificKinds) {
  // Digits of the email's local part are not also a phone.
  EXPECT_EQ(found("13812345678@qq.com"), (Hits{{"EMAIL", "13812345678@qq.com"}}));
  // IPv4 tail of an IPv6 address is not reported separately.
  EXPECT_EQ(found("::ffff:10.0.0.1"), (Hits{{"IPV6", "::ffff:10.0.0.1"}}));
}

TEST(PiiScan, UserPatternsAndKeywords) {
  PiiConfig cfg;
  cfg.patterns.push_back({"employee id", "EMP-[0-9]{6}"});
  cfg.patterns.push_back({"项目", "项目代号\\S"});
  cfg.keywords = {"Project Falcon", "机密"};
  PiiDetector d(cfg);
  auto spans = d.scan("EMP-123456 works on project falcon (机密), not projectfalcons; 项目代号鹰 ok");
  ASSERT_EQ(spans.size(), 4u);
  EXPECT_EQ(spans[0].label, "EMPLOYEE_ID");
  EXPECT_EQ(spans[0].value, "EMP-123456");
  EXPECT_EQ(spans[1].kind, PiiKind::Keyword);
  EXPECT_EQ(spans[1].value, "project falcon");
  EXPECT_EQ(spans[2].value, "机密");
  // "\S" matches one byte; the span is widened to the whole character.
  EXPECT_EQ(spans[3].value, "项目代号鹰");
  EXPECT_EQ(spans[3].label, "PATTERN");  // non-ASCII name sanitizes to the default stem
  cfg.patterns = {{"bad", "([a-z"}};
  EXPECT_THROW(PiiDetector{cfg}, edgellm::InvalidArgument);
}

TEST(PiiScan, DisabledKindsAreSkipped) {
  PiiConfig cfg;
  cfg.enabled[static_cast<size_t>(PiiKind::Email)] = false;
  EXPECT_TRUE(found("a.b@example.com", PiiDetector(cfg)).empty());
}

TEST(PiiScan, RobustOnArbitraryBytes) {
  // Truncated UTF-8, NULs, lone separators: no crash, spans in bounds, on char boundaries.
  std::string junk = "\xE4\xBD" "@@@+86-" "\x00\xFF" "138 1234 " "\xE4" "..::1" "::" "京";
  junk.push_back('\0');
  junk += "4111 1111 1111 1111 1";
  junk += "\xEF\xBC\x91\xEF\xBC\x93\xEF\xBC\x98\xEF\xBC";  // full-width "138" then a cut sequence
  PiiDetector d;
  for (size_t cut = 0; cut <= junk.size(); ++cut) {
    std::string s = junk.substr(0, cut);
    for (const auto& sp : d.scan(s)) {
      ASSERT_LE(sp.end, s.size());
      ASSERT_LT(sp.begin, sp.end);
      ASSERT_EQ(sp.value, s.substr(sp.begin, sp.end - sp.begin));
    }
  }
  // Long inputs stay linear-ish: a megabyte of digits and separators scans without issue.
  std::string big;
  for (int i = 0; i < 100000; ++i) big += "1.2:3 4-";
  EXPECT_NO_THROW(d.scan(big));
}

TEST(PiiLabelled, PrecisionAndRecallPerKind) {
  std::ifstream in(std::string(EDGELLM_SOURCE_DIR) + "/tests/data/hybrid/pii_labelled.jsonl");
  ASSERT_TRUE(in) << "missing tests/data/hybrid/pii_labelled.jsonl";
  PiiDetector d;
  struct Count { int tp = 0, fp = 0, fn = 0; };
  std::map<std::string, Count> per;
  Count all;
  std::string line;
  int rows = 0, negatives = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    std::string text = j["text"];
    ++rows;
    negatives += j["spans"].empty();
    std::set<std::tuple<std::string, size_t, size_t>> gold, pred;
    for (auto& s : j["spans"])
      gold.insert({s["kind"].get<std::string>(), s["begin"].get<size_t>(), s["end"].get<size_t>()});
    for (auto& s : d.scan(text)) pred.insert({std::string(pii_kind_name(s.kind)), s.begin, s.end});
    for (auto& g : gold) {
      bool hit = pred.count(g);
      (hit ? per[std::get<0>(g)].tp : per[std::get<0>(g)].fn)++;
      if (!hit) std::cout << "  missed " << std::get<0>(g) << " in: " << text << "\n";
    }
    for (auto& p : pred)
      if (!gold.count(p)) {
        per[std::get<0>(p)].fp++;
        std::cout << "  false positive " << std::get<0>(p) << " '"
                  << text.substr(std::get<1>(p), std::get<2>(p) - std::get<1>(p)) << "' in: " << text << "\n";
      }
  }
  ASSERT_GE(rows, 300);
  ASSERT_GE(negatives, 100);
  auto pr = [](const Count& c, double* p, double* r) {
    *p = c.tp + c.fp ? double(c.tp) / (c.tp + c.fp) : 1.0;
    *r = c.tp + c.fn ? double(c.tp) / (c.tp + c.fn) : 1.0;
  };
  std::printf("PII labelled set: %d texts (%d without PII)\n", rows, negatives);
  std::printf("%-10s %5s %4s %4s %9s %7s\n", "kind", "tp", "fp", "fn", "precision", "recall");
  for (auto& [k, c] : per) {
    double p, r;
    pr(c, &p, &r);
    std::printf("%-10s %5d %4d %4d %9.4f %7.4f\n", k.c_str(), c.tp, c.fp, c.fn, p, r);
    all.tp += c.tp, all.fp += c.fp, all.fn += c.fn;
    EXPECT_GE(p, 0.95) << k;
    EXPECT_GE(r, 0.95) << k;
  }
  double p, r;
  pr(all, &p, &r);
  std::printf("%-10s %5d %4d %4d %9.4f %7.4f\n", "overall", all.tp, all.fp, all.fn, p, r);
  EXPECT_GE(p, 0.97);
  EXPECT_GE(r, 0.97);
}

TEST(PiiScan, UserPatternsOnLongInputsStayBounded) {
  // An alternation loop over a 200 KB line would overflow libstdc++'s recursive matcher if it
  // ran over the whole text at once; windows keep it bounded and the match is still found.
  PiiConfig cfg;
  cfg.patterns.push_back({"code", "SECRET-(a|b)+"});
  PiiDetector d(cfg);
  std::string text(200000, 'x');
  text += " SECRET-abab ";
  text += std::string(1000, 'a');
  text += "\nsecond line SECRET-ba";
  auto spans = d.scan(text);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].value, "SECRET-abab");
  EXPECT_EQ(spans[1].value, "SECRET-ba");
}

