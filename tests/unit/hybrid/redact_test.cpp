// Redaction round trip, stable numbering, and stream restore with placeholders split anywhere.
#include "hybrid/redact.h"

#include <gtest/gtest.h>

#include <random>

using namespace edgellm::hybrid;

namespace {
std::string redact_all(Redactor& r, const std::string& text, const PiiDetector& d = PiiDetector()) {
  return r.redact(text, d.scan(text));
}
}  // namespace

TEST(Redact, SameValueSamePlaceholderAcrossMessages) {
  Redactor r;
  std::string a = redact_all(r, "mail zhang@example.com or call 13812345678, zhang@example.com again");
  EXPECT_EQ(a, "mail [EMAIL_1] or call [PHONE_1], [EMAIL_1] again");
  std::string b = redact_all(r, "其他邮箱 li@example.com 和 zhang@example.com");
  EXPECT_EQ(b, "其他邮箱 [EMAIL_2] 和 [EMAIL_1]");
  EXPECT_EQ(r.mapping().at("[EMAIL_2]"), "li@example.com");
  EXPECT_EQ(r.mapping().size(), 3u);
}

TEST(Redact, RestoreIsInverseAndKeepsUnknownBrackets) {
  Redactor r;
  std::string text = "身份证11010519491231002X，卡 4111 1111 1111 1111，IP 10.0.0.1 [note] [EMAIL_9] [";
  std::string red = redact_all(r, text);
  EXPECT_EQ(red.find("11010519491231002X"), std::string::npos);
  EXPECT_EQ(red.find("4111"), std::string::npos);
  EXPECT_EQ(r.restore(red), text);
  EXPECT_EQ(r.restore("x [ID_CARD_1][ID_CARD_1] [[IPV4_1]]"),
            "x 11010519491231002X11010519491231002X [10.0.0.1]");
}

TEST(Redact, UserPatternLabelsBecomePlaceholders) {
  PiiConfig cfg;
  cfg.patterns.push_back({"employee_id", "EMP-[0-9]{6}"});
  PiiDetector d(cfg);
  Redactor r;
  EXPECT_EQ(redact_all(r, "ask EMP-123456", d), "ask [EMPLOYEE_ID_1]");
  EXPECT_EQ(r.restore("[EMPLOYEE_ID_1] said hi"), "EMP-123456 said hi");
}

TEST(StreamRestore, PlaceholderSplitAtEveryPosition) {
  Redactor r;
  redact_all(r, "a@b.com 13812345678");
  const std::string answer = "Mail [EMAIL_1] and [PHONE_1]; [not] [EMAIL_12 [EMAIL_1]";
  const std::string want = "Mail a@b.com and 13812345678; [not] [EMAIL_12 a@b.com";
  EXPECT_EQ(r.restore(answer), want);
  for (size_t cut1 = 0; cut1 <= answer.size(); ++cut1) {
    for (size_t cut2 = cut1; cut2 <= answer.size(); cut2 += 3) {
      StreamRestorer sr(r);
      std::string got = sr.push(answer.substr(0, cut1));
      got += sr.push(answer.substr(cut1, cut2 - cut1));
      got += sr.push(answer.substr(cut2));
      got += sr.finish();
      ASSERT_EQ(got, want) << cut1 << "," << cut2;
    }
  }
}

TEST(StreamRestore, OneByteChunksAndHoldBackIsMinimal) {
  Redactor r;
  redact_all(r, "a@b.com");
  StreamRestorer sr(r);
  // Text that cannot start a placeholder is released at once.
  EXPECT_EQ(sr.push("Hello "), "Hello ");
  EXPECT_EQ(sr.push("[EM"), "");
  EXPECT_EQ(sr.push("AIL_"), "");
  EXPECT_EQ(sr.push("1] ok"), "a@b.com ok");
  EXPECT_EQ(sr.push("[x"), "[x");       // cannot become a placeholder
  EXPECT_EQ(sr.push(" [EMAIL"), " ");
  EXPECT_EQ(sr.finish(), "[EMAIL");      // stream ended on a partial: emitted verbatim

  std::string answer = "中文[EMAIL_1]结尾[EMAIL_1]";
  StreamRestorer one(r);
  std::string got;
  for (char c : answer) got += one.push(std::string(1, c));
  got += one.finish();
  EXPECT_EQ(got, "中文a@b.com结尾a@b.com");
}

TEST(StreamRestore, RandomChunkingMatchesWholeRestore) {
  Redactor r;
  redact_all(r, "x@y.cn 13912345678 10.1.2.3 京A12345");
  std::vector<std::string> words = {"[EMAIL_1]", "[PHONE_1]", "[IPV4_1]", "[PLATE_1]", "[", "]", "[PHONE_",
                                    "word", " ", "中", "[EMAIL_2]"};
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    std::string answer;
    for (int k = 0; k < 20; ++k) answer += words[rng() % words.size()];
    StreamRestorer sr(r);
    std::string got;
    size_t pos = 0;
    while (pos < answer.size()) {
      size_t n = 1 + rng() % 7;
      got += sr.push(answer.substr(pos, n));
      pos += n;
    }
    got += sr.finish();
    ASSERT_EQ(got, r.restore(answer)) << answer;
  }
}
