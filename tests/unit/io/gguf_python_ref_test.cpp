// Cross-checks against an independent implementation, the `gguf` Python package:
//  - files written by Python's GGUFWriter are read by our reader with the same values;
//  - files written by our GgufWriter are read by Python with the same values;
//  - a real model's metadata and tensor table match Python's reading of it.
// Skipped when no Python with the gguf package is available (EDGELLM_PYTHON, else the build's venv).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gguf_test_util.h"

namespace edgellm::io::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Dumps metadata and the tensor table of a GGUF file as JSON.
constexpr const char* kDumpScript = R"PY(
import json, sys
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
kv = {k: {'types': [int(t) for t in f.types], 'value': f.contents()}
      for k, f in r.fields.items() if not k.startswith('GGUF.')}
ts = [{'name': t.name, 'type': int(t.tensor_type), 'ne': [int(x) for x in t.shape],
       'nbytes': int(t.n_bytes), 'offset': int(t.data_offset)} for t in r.tensors]
json.dump({'alignment': int(r.alignment), 'kv': kv, 'tensors': ts}, sys.stdout)
)PY";

// Writes one value of every type, nested arrays and two tensors.
constexpr const char* kMakeScript = R"PY(
import sys, numpy as np
from gguf import GGUFWriter, GGUFValueType as T
w = GGUFWriter(sys.argv[1], 'testarch')
w.add_key_value('u8', 200, T.UINT8); w.add_key_value('i8', -100, T.INT8)
w.add_key_value('u16', 60000, T.UINT16); w.add_key_value('i16', -30000, T.INT16)
w.add_key_value('u32', 4000000000, T.UINT32); w.add_key_value('i32', -2000000000, T.INT32)
w.add_key_value('u64', 2**64 - 1, T.UINT64); w.add_key_value('i64', -2**63, T.INT64)
w.add_key_value('f32', 0.1, T.FLOAT32); w.add_key_value('f64', 0.1, T.FLOAT64)
w.add_key_value('b', True, T.BOOL); w.add_key_value('s', 'h\u00e9llo', T.STRING)
w.add_key_value('ai8', [-1, 2, -3], T.ARRAY, T.INT8)
w.add_key_value('au64', [1, 2**63], T.ARRAY, T.UINT64)
w.add_key_value('af32', [0.5, -0.1], T.ARRAY, T.FLOAT32)
w.add_key_value('as', ['x', '', 'yz'], T.ARRAY, T.STRING)
w.add_key_value('ab', [True, False], T.ARRAY, T.BOOL)
w.add_key_value('nested', [[1, 2], [3]], T.ARRAY, T.ARRAY)
w.add_tensor('w', np.arange(64 * 3, dtype=np.float32).reshape(3, 64))
w.add_tensor('h', np.full((5,), 1.5, dtype=np.float16))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
)PY";

// EDGELLM_PYTHON from the environment, else the venv the build was configured with (scripts/setup).
std::string python() {
  if (const char* p = std::getenv("EDGELLM_PYTHON"); p && *p) return p;
  return EDGELLM_TEST_PYTHON;
}

class PyRef : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgellm_pyref_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    if (!fs::exists(python()) || run_py("import gguf, numpy", {}).rc != 0)
      GTEST_SKIP() << "no Python with the gguf package at " << python();
  }
  void TearDown() override { fs::remove_all(dir_); }

  struct Result {
    int rc;
    std::string out;
  };
  Result run_py(const std::string& code, const std::vector<std::string>& args) {
    const fs::path script = dir_ / "script.py";
    std::ofstream(script) << code;
    std::string cmd = python() + " " + script.string();
    for (const std::string& a : args) cmd += " '" + a + "'";
    cmd += " 2>" + (dir_ / "stderr.txt").string();
    Result r{-1, {}};
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    r.rc = ::pclose(p);
    return r;
  }
  json dump(const std::string& path) {
    Result r = run_py(kDumpScript, {path});
    std::ifstream err(dir_ / "stderr.txt");
    EXPECT_EQ(r.rc, 0) << "python dump failed for " << path << ":\n" << err.rdbuf();
    return r.rc == 0 ? json::parse(r.out) : json{};
  }
  fs::path dir_;
};

json to_json(const Value& v);
json array_to_json(const Value& v);

// Python's reader flattens arrays of arrays, so nested values are compared flattened.
void flatten_into(const Value& v, json& out) {
  if (v.elem_type != ValueType::ARRAY) {
    for (const json& e : array_to_json(v)) out.push_back(e);
    return;
  }
  for (const Value& n : v.nested) flatten_into(n, out);
}

json array_to_json(const Value& v) {
  json a = json::array();
  switch (v.elem_type) {
    case ValueType::STRING: for (const auto& s : v.strings) a.push_back(s); break;
    case ValueType::FLOAT32: case ValueType::FLOAT64: for (double d : v.floats) a.push_back(d); break;
    case ValueType::ARRAY: for (const auto& n : v.nested) a.push_back(array_to_json(n)); break;
    case ValueType::BOOL: for (int64_t i : v.ints) a.push_back(i != 0); break;
    case ValueType::UINT64: for (int64_t i : v.ints) a.push_back(static_cast<uint64_t>(i)); break;
    default: for (int64_t i : v.ints) a.push_back(i); break;
  }
  return a;
}

json to_json(const Value& v) {
  if (v.is_array()) return array_to_json(v);
  return std::visit(
      [](const auto& x) -> json {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::monostate>) return nullptr;
        else return x;
      },
      v.scalar);
}

// Our reading of `f` must equal Python's reading `ref` of the same file.
void expect_matches_reference(const GgufFile& f, const json& ref) {
  EXPECT_EQ(f.alignment(), ref["alignment"].get<uint32_t>());
  ASSERT_EQ(f.metadata().size(), ref["kv"].size());
  for (const auto& [key, v] : f.metadata()) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(ref["kv"].contains(key));
    const json& r = ref["kv"][key];
    EXPECT_EQ(static_cast<int>(v.type), r["types"][0].get<int>());
    if (v.is_array() && r["types"].size() > 1) {
      EXPECT_EQ(static_cast<int>(v.elem_type), r["types"][1].get<int>());
    }
    json ours = to_json(v);
    if (v.is_array() && v.elem_type == ValueType::ARRAY) {
      ours = json::array();
      flatten_into(v, ours);
    }
    EXPECT_TRUE(ours == r["value"]);
  }
  ASSERT_EQ(f.tensors().size(), ref["tensors"].size());
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const TensorInfo& t = f.tensors()[i];
    const json& r = ref["tensors"][i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, r["name"].get<std::string>());
    EXPECT_EQ(static_cast<int>(t.type), r["type"].get<int>());
    EXPECT_EQ(t.ne, r["ne"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.nbytes, r["nbytes"].get<uint64_t>());
    EXPECT_EQ(static_cast<uint64_t>(t.data - f.bytes()), r["offset"].get<uint64_t>());
  }
}

TEST_F(PyRef, ReadsFileWrittenByPython) {
  const std::string path = (dir_ / "py.gguf").string();
  ASSERT_EQ(run_py(kMakeScript, {path}).rc, 0);
  auto f = GgufFile::open(path);
  // Values as Python wrote them (independent of either reader).
  EXPECT_EQ(*f->get_string("general.architecture"), "testarch");
  EXPECT_EQ(*f->get_int("u8"), 200);
  EXPECT_EQ(*f->get_int("i16"), -30000);
  EXPECT_EQ(std::get<uint64_t>(f->find("u64")->scalar), UINT64_MAX);
  EXPECT_EQ(*f->get_int("i64"), INT64_MIN);
  EXPECT_EQ(*f->get_float("f32"), static_cast<double>(0.1f));
  EXPECT_EQ(*f->get_float("f64"), 0.1);
  EXPECT_EQ(*f->get_string("s"), "h\xc3\xa9llo");
  EXPECT_EQ(*f->get_int_array("ai8"), (std::vector<int64_t>{-1, 2, -3}));
  EXPECT_EQ(*f->get_string_array("as"), (std::vector<std::string>{"x", "", "yz"}));
  EXPECT_EQ(f->find("nested")->nested.at(1).ints, (std::vector<int64_t>{3}));
  const TensorInfo& w = f->require_tensor("w", {64, 3});
  float x;
  std::memcpy(&x, w.data + 4 * 100, 4);
  EXPECT_EQ(x, 100.0f);
  EXPECT_EQ(f->require_tensor("h", {5}).type, TensorType::F16);
  expect_matches_reference(*f, dump(path));
}

TEST_F(PyRef, PythonReadsOurWriter) {
  GgufWriter w = small_model_writer();
  w.set_i8("i8", -7);
  w.set_u64("u64", UINT64_MAX);
  w.set_f64("f64", 0.1);
  w.set_bool("flag", true);
  w.set_float_array("scores", ValueType::FLOAT32, {0.5, -2.0});
  w.set_int_array("bools", ValueType::BOOL, {1, 0});
  w.set_alignment(64);
  const std::string path = (dir_ / "ours.gguf").string();
  w.write(path);
  const json ref = dump(path);
  ASSERT_FALSE(ref.is_null());
  // Python sees exactly what we put in.
  EXPECT_EQ(ref["alignment"], 64);
  EXPECT_EQ(ref["kv"]["general.architecture"]["value"], "llama");
  EXPECT_EQ(ref["kv"]["u64"]["value"].get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(ref["kv"]["i8"]["value"], -7);
  EXPECT_EQ(ref["kv"]["f64"]["value"], 0.1);
  EXPECT_EQ(ref["kv"]["flag"]["value"], true);
  EXPECT_EQ(ref["kv"]["tokenizer.ggml.tokens"]["value"], json({"a", "b", "<s>"}));
  EXPECT_EQ(ref["kv"]["tokenizer.ggml.token_type"]["types"], json({9, 5}));
  EXPECT_EQ(ref["kv"]["bools"]["value"], json({true, false}));
  ASSERT_EQ(ref["tensors"].size(), 3u);
  EXPECT_EQ(ref["tensors"][1]["name"], "blk.0.ffn_up.weight");
  EXPECT_EQ(ref["tensors"][1]["ne"], json({64, 2}));
  EXPECT_EQ(ref["tensors"][1]["nbytes"], 72);
  auto f = GgufFile::open(path);
  expect_matches_reference(*f, ref);
}

TEST_F(PyRef, RealModelMatchesPython) {
  const char* env = std::getenv("EDGELLM_MODEL_DIR");
  const std::string home = std::getenv("HOME") ? std::getenv("HOME") : "/root";
  const std::string path =
      (env ? std::string(env) : home + "/.cache/edgellm/models") + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << "absent: " << path;
  auto f = GgufFile::open(path);
  expect_matches_reference(*f, dump(path));
}

}  // namespace
}  // namespace edgellm::io::testing
