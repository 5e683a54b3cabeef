// Writer -> reader round trips: every value type, arrays (nested too), tensors, alignment,
// atomic file writes, and the writer's own argument checks.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>

#include "gguf_test_util.h"

namespace edgellm::io::testing {
namespace {

TEST(GgufRoundTrip, EveryScalarType) {
  GgufWriter w;
  w.set_u8("u8", 250);
  w.set_i8("i8", -120);
  w.set_u16("u16", 65000);
  w.set_i16("i16", -32000);
  w.set_u32("u32", 4000000000u);
  w.set_i32("i32", -2000000000);
  w.set_u64("u64", std::numeric_limits<uint64_t>::max());
  w.set_i64("i64", std::numeric_limits<int64_t>::min());
  w.set_f32("f32", 1.5f);
  w.set_f64("f64", 3.141592653589793);
  w.set_bool("bool_t", true);
  w.set_bool("bool_f", false);
  w.set_string("str", std::string("h\xc3\xa9llo\0x", 8));  // UTF-8 and an embedded NUL
  w.set_string("empty", "");
  const Bytes b = w.to_bytes();
  auto f = GgufFile::from_memory(b.data(), b.size());
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->tensors().size(), 0u);
  ASSERT_EQ(f->metadata().size(), 14u);
  EXPECT_EQ(f->metadata()[0].first, "u8");  // file order kept
  EXPECT_EQ(f->find("u8")->type, ValueType::UINT8);
  EXPECT_EQ(*f->get_int("u8"), 250);
  EXPECT_EQ(f->find("i8")->type, ValueType::INT8);
  EXPECT_EQ(*f->get_int("i8"), -120);
  EXPECT_EQ(*f->get_int("u16"), 65000);
  EXPECT_EQ(f->find("i16")->type, ValueType::INT16);
  EXPECT_EQ(*f->get_int("i16"), -32000);
  EXPECT_EQ(*f->get_int("u32"), 4000000000);
  EXPECT_EQ(*f->get_int("i32"), -2000000000);
  EXPECT_EQ(std::get<uint64_t>(f->find("u64")->scalar), std::numeric_limits<uint64_t>::max());
  EXPECT_THROW(f->get_int("u64"), ModelFormatError);  // does not fit int64
  EXPECT_EQ(*f->get_int("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f->find("f32")->type, ValueType::FLOAT32);
  EXPECT_EQ(*f->get_float("f32"), 1.5);
  EXPECT_EQ(*f->get_float("f64"), 3.141592653589793);
  EXPECT_EQ(*f->get_float("i32"), -2000000000.0);  // integers read as floats
  EXPECT_EQ(*f->get_bool("bool_t"), true);
  EXPECT_EQ(*f->get_bool("bool_f"), false);
  EXPECT_EQ(*f->get_string("str"), std::string("h\xc3\xa9llo\0x", 8));
  EXPECT_EQ(*f->get_string("empty"), "");
  EXPECT_EQ(f->require_int("u32"), 4000000000);
  EXPECT_EQ(f->require_string("str").size(), 8u);
  EXPECT_DOUBLE_EQ(f->require_float("f32"), 1.5);
}

TEST(GgufRoundTrip, EveryArrayType) {
  GgufWriter w;
  const ValueType int_types[] = {ValueType::UINT8,  ValueType::INT8,   ValueType::UINT16,
                                 ValueType::INT16,  ValueType::UINT32, ValueType::INT32,
                                 ValueType::UINT64, ValueType::INT64,  ValueType::BOOL};
  for (ValueType t : int_types) {
    const bool is_signed = t == ValueType::INT8 || t == ValueType::INT16 ||
                           t == ValueType::INT32 || t == ValueType::INT64;
    std::vector<int64_t> v = t == ValueType::BOOL ? std::vector<int64_t>{1, 0, 1}
                             : is_signed          ? std::vector<int64_t>{-5, 0, 100}
                                                  : std::vector<int64_t>{0, 7, 200};
    w.set_int_array("arr." + std::string(value_type_name(t)), t, v);
  }
  w.set_float_array("arr.f32", ValueType::FLOAT32, {0.25, -1e10, 3.0});
  w.set_float_array("arr.f64", ValueType::FLOAT64, {1e-300, 2.5});
  w.set_string_array("arr.str", {"x", "", "long string"});
  w.set_string_array("arr.empty", {});
  const Bytes b = w.to_bytes();
  auto f = GgufFile::from_memory(b.data(), b.size());
  for (ValueType t : int_types) {
    const std::string key = "arr." + std::string(value_type_name(t));
    const Value* v = f->find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_TRUE(v->is_array());
    EXPECT_EQ(v->elem_type, t) << key;
    EXPECT_EQ(v->array_size(), 3u) << key;
  }
  EXPECT_EQ(*f->get_int_array("arr.INT8"), (std::vector<int64_t>{-5, 0, 100}));
  EXPECT_EQ(*f->get_int_array("arr.INT64"), (std::vector<int64_t>{-5, 0, 100}));
  EXPECT_EQ(*f->get_int_array("arr.UINT16"), (std::vector<int64_t>{0, 7, 200}));
  EXPECT_EQ(f->find("arr.BOOL")->ints, (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(*f->get_float_array("arr.f32"), (std::vector<double>{0.25, -1e10, 3.0}));
  EXPECT_EQ(*f->get_float_array("arr.f64"), (std::vector<double>{1e-300, 2.5}));
  EXPECT_EQ(*f->get_float_array("arr.INT32"), (std::vector<double>{-5, 0, 100}));
  EXPECT_EQ(*f->get_string_array("arr.str"), (std::vector<std::string>{"x", "", "long string"}));
  EXPECT_TRUE(f->get_string_array("arr.empty")->empty());
  EXPECT_TRUE(f->get_int_array("arr.empty")->empty());  // empty arrays fit any getter
}

TEST(GgufRoundTrip, NestedArrays) {
  Value inner1;
  inner1.type = ValueType::ARRAY;
  inner1.elem_type = ValueType::INT32;
  inner1.ints = {1, 2, 3};
  Value inner2;
  inner2.type = ValueType::ARRAY;
  inner2.elem_type = ValueType::STRING;
  inner2.strings = {"p", "q"};
  Value mid;
  mid.type = ValueType::ARRAY;
  mid.elem_type = ValueType::ARRAY;
  mid.nested = {inner1};
  Value outer;
  outer.type = ValueType::ARRAY;
  outer.elem_type = ValueType::ARRAY;
  outer.nested = {inner2, mid};  // elements of one array may differ in their own elem type
  GgufWriter w;
  w.set("nested", outer);
  w.set_u8("after", 9);  // parsing resumes correctly after the nested value
  const Bytes b = w.to_bytes();
  auto f = GgufFile::from_memory(b.data(), b.size());
  const Value* v = f->find("nested");
  ASSERT_NE(v, nullptr);
  ASSERT_EQ(v->elem_type, ValueType::ARRAY);
  ASSERT_EQ(v->array_size(), 2u);
  EXPECT_EQ(v->nested[0].strings, (std::vector<std::string>{"p", "q"}));
  ASSERT_EQ(v->nested[1].nested.size(), 1u);
  EXPECT_EQ(v->nested[1].nested[0].ints, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(*f->get_int("after"), 9);
}

TEST(GgufRoundTrip, TensorsZeroCopyAndAligned) {
  const Bytes b = small_model();
  auto f = GgufFile::from_memory(b.data(), b.size());
  ASSERT_EQ(f->tensors().size(), 3u);
  const TensorInfo& q = f->require_tensor("blk.0.ffn_up.weight", {64, 2});
  EXPECT_EQ(q.type, TensorType::Q4_0);
  EXPECT_EQ(q.nbytes, 72u);
  EXPECT_EQ(q.n_elements(), 128);
  EXPECT_EQ(q.rows(), 2);
  for (size_t i = 0; i < 72; ++i) ASSERT_EQ(q.data[i], static_cast<uint8_t>(i * 7));
  // Zero copy: pointers lie inside the caller's buffer, at aligned offsets.
  for (const TensorInfo& t : f->tensors()) {
    EXPECT_GE(t.data, b.data());
    EXPECT_LE(t.data + t.nbytes, b.data() + b.size());
    EXPECT_EQ((t.data - b.data()) % 32, 0) << t.name;
  }
  const TensorInfo& n = f->require_tensor("norm.weight", {64});
  float x;
  std::memcpy(&x, n.data + 4 * 10, 4);
  EXPECT_EQ(x, 5.0f);
  EXPECT_EQ(f->require_tensor("out.weight", {8, 2, 2}).rows(), 4);
}

TEST(GgufRoundTrip, CustomAlignmentHonoured) {
  GgufWriter w = small_model_writer();
  w.set_alignment(256);
  const Bytes b = w.to_bytes();
  auto f = GgufFile::from_memory(b.data(), b.size());
  EXPECT_EQ(f->alignment(), 256u);
  EXPECT_EQ(*f->get_int("general.alignment"), 256);
  for (const TensorInfo& t : f->tensors()) {
    EXPECT_EQ(t.offset % 256, 0u) << t.name;
    EXPECT_EQ((t.data - b.data()) % 256, 0) << t.name;
  }
}

TEST(GgufRoundTrip, OverwriteKeyKeepsPosition) {
  GgufWriter w;
  w.set_u32("a", 1);
  w.set_string("b", "x");
  w.set_string("a", "now a string");
  w.remove("b");
  const Bytes b = w.to_bytes();
  auto f = GgufFile::from_memory(b.data(), b.size());
  ASSERT_EQ(f->metadata().size(), 1u);
  EXPECT_EQ(*f->get_string("a"), "now a string");
}

TEST(GgufRoundTrip, WriteFileAtomicallyAndOpenWithMmap) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("edgellm_io_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.gguf").string();
  small_model_writer().write(path);
  {
    auto f = GgufFile::open(path);
    EXPECT_EQ(f->path(), path);
    EXPECT_EQ(f->file_size(), std::filesystem::file_size(path));
    EXPECT_EQ(*f->get_string("general.architecture"), "llama");
    EXPECT_EQ(f->require_tensor("out.weight", {8, 2, 2}).nbytes, 128u);
  }
  // Overwrite in place: the new content replaces the old, and no temp file is left behind.
  GgufWriter w2;
  w2.set_string("general.architecture", "gemma3");
  w2.write(path);
  EXPECT_EQ(*GgufFile::open(path)->get_string("general.architecture"), "gemma3");
  size_t n_files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n_files;
  EXPECT_EQ(n_files, 1u);
  EXPECT_THROW(w2.write((dir / "no_such_dir" / "x.gguf").string()), Error);
  std::filesystem::remove_all(dir);
}

// A copied writer serializes its own tensor bytes: it once kept a pointer into the original's
// buffer, read after the original was destroyed (heap-use-after-free under ASan).
TEST(GgufRoundTrip, CopiedWriterOwnsItsTensorBytes) {
  std::vector<uint8_t> expected;
  std::unique_ptr<GgufWriter> copy;
  {
    GgufWriter w;
    w.add_tensor("t", TensorType::F32, {2}, std::vector<uint8_t>(8, 0x5a));
    expected = w.to_bytes();
    copy = std::make_unique<GgufWriter>(w);
  }
  EXPECT_EQ(copy->to_bytes(), expected);
}

TEST(GgufWriterChecks, RejectsBadInput) {
  GgufWriter w;
  EXPECT_THROW(w.add_tensor("t", TensorType::F32, {4}, Bytes(15)), InvalidArgument);  // size
  EXPECT_THROW(w.add_tensor("t", TensorType::Q4_0, {16}, Bytes(9)), InvalidArgument); // block
  EXPECT_THROW(w.add_tensor("t", TensorType::F32, {}, Bytes(0)), InvalidArgument);
  EXPECT_THROW(w.add_tensor("t", TensorType::F32, {1, 1, 1, 1, 1}, Bytes(4)), InvalidArgument);
  EXPECT_THROW(w.add_tensor("t", TensorType::F32, {0}, Bytes(0)), InvalidArgument);
  EXPECT_THROW(w.add_tensor("", TensorType::F32, {1}, Bytes(4)), InvalidArgument);
  w.add_tensor("t", TensorType::F32, {1}, Bytes(4));
  EXPECT_THROW(w.add_tensor("t", TensorType::F32, {1}, Bytes(4)), InvalidArgument);  // dup
  EXPECT_THROW(w.set_alignment(48), InvalidArgument);
  EXPECT_THROW(w.set_alignment(0), InvalidArgument);
  EXPECT_THROW(w.set_string("general.alignment", "32"), InvalidArgument);
  EXPECT_THROW(w.set_int_array("a", ValueType::UINT8, {256}), InvalidArgument);
  EXPECT_THROW(w.set_int_array("a", ValueType::INT8, {-129}), InvalidArgument);
  EXPECT_THROW(w.set_int_array("a", ValueType::BOOL, {2}), InvalidArgument);
  EXPECT_THROW(w.set_int_array("a", ValueType::STRING, {1}), InvalidArgument);
  EXPECT_THROW(w.set_float_array("a", ValueType::INT32, {1}), InvalidArgument);
  Value bad;
  bad.type = ValueType::UINT32;
  bad.scalar = std::string("not a number");
  EXPECT_THROW(w.set("a", bad), InvalidArgument);
  EXPECT_EQ(w.alignment(), 32u);
}

}  // namespace
}  // namespace edgellm::io::testing
