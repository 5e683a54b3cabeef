// Audit log: SHA-256 against FIPS 180-4 examples (values checked with Python hashlib), line format, concurrent appends.
#include "hybrid/audit.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "util/error.h"

using namespace edgellm::hybrid;

TEST(Audit, Sha256KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Audit, ConcurrentWritersProduceWholeLines) {
  std::string path = ::testing::TempDir() + "/hybrid_audit_concurrent.jsonl";
  std::remove(path.c_str());
  AuditConfig cfg;
  cfg.path = path;
  cfg.fsync = "interval";
  cfg.hash_salt = "salt";
  {
    AuditLog log(cfg);
    EXPECT_NE(log.prompt_hash("x"), sha256_hex("x"));  // salted
    EXPECT_EQ(log.prompt_hash("x"), sha256_hex(std::string("salt") + '\0' + "x"));
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
      ts.emplace_back([&, t] {
        for (int i = 0; i < 200; ++i) {
          AuditEntry e;
          e.request_id = "t" + std::to_string(t) + "-" + std::to_string(i);
          e.route.reason = "prefer_local";
          e.pii_counts[size_t(PiiKind::Email)] = i % 3;
          log.write(e);
        }
      });
    for (auto& t : ts) t.join();
    log.sync();
  }
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    auto j = nlohmann::json::parse(line);
    ASSERT_TRUE(j.contains("route"));
    if (j["pii"].contains("EMAIL")) {
      EXPECT_GT(j["pii"]["EMAIL"].get<int>(), 0);
    }
  }
  EXPECT_EQ(n, 800);
  std::remove(path.c_str());
}

TEST(Audit, LongCallerIdsAreClipped) {
  AuditEntry e;
  e.request_id = std::string(1000, 'r');
  auto j = AuditLog::to_json(e);
  EXPECT_EQ(j["request_id"].get<std::string>().size(), 128u);
  AuditConfig bad;
  bad.path = "/nonexistent-dir/x.jsonl";
  EXPECT_THROW(AuditLog{bad}, edgellm::Error);
}
