// Each structural defect, made by patching one field of a valid file, must give one clear
// ModelFormatError naming the file and the reason (and never crash or over-allocate).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gguf_test_util.h"

namespace edgellm::io::testing {
namespace {

TEST(GgufValidation, ValidFileParses) {
  const Bytes b = small_model();
  EXPECT_NO_THROW(GgufFile::from_memory(b.data(), b.size(), "test.gguf"));
}

TEST(GgufValidation, BadMagic) {
  Bytes b = small_model();
  b[0] = 0x7f;
  b[1] = 'E';
  expect_format_error(b, "not a GGUF file (magic bytes are 7f 45 55 46");
  expect_format_error(Bytes{}, "not a GGUF file");
  expect_format_error(Bytes{'G', 'G'}, "not a GGUF file");
}

TEST(GgufValidation, Version1Rejected) {
  Bytes b = small_model();
  poke<uint32_t>(b, 4, 1);
  expect_format_error(b, "GGUF version 1 is not supported");
}

TEST(GgufValidation, UnknownVersionRejected) {
  Bytes b = small_model();
  poke<uint32_t>(b, 4, 4);
  expect_format_error(b, "unsupported GGUF version 4");
  poke<uint32_t>(b, 4, 0x03000000);  // v3 written big-endian
  expect_format_error(b, "big-endian");
}

TEST(GgufValidation, Version2Accepted) {
  Bytes b = small_model();
  poke<uint32_t>(b, 4, 2);
  auto f = GgufFile::from_memory(b.data(), b.size());
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->tensors().size(), 3u);
}

// Every prefix of a valid file fails cleanly: "truncated" inside the header/metadata/tensor
// infos, "extends past end of file" once only tensor data is missing.
TEST(GgufValidation, TruncatedAtEveryLength) {
  const Bytes full = small_model();
  auto f = GgufFile::from_memory(full.data(), full.size());
  const size_t data_start = static_cast<size_t>(f->tensors()[0].data - full.data());
  const size_t infos_end = tensor_at(full, "out.weight").offset + 8;
  for (size_t len = 0; len < full.size(); ++len) {
    SCOPED_TRACE("length " + std::to_string(len));
    const Bytes b(full.begin(), full.begin() + static_cast<long>(len));
    if (len < 4) expect_format_error(b, "not a GGUF file");
    else if (len < infos_end) expect_format_error(b, "truncated");
    else if (len >= data_start) expect_format_error(b, "extends past end of file");
    else expect_format_error(b, "");  // inside the padding: data start is past the end
  }
}

Bytes cut(const Bytes& b, size_t n) { return Bytes(b.begin(), b.begin() + static_cast<long>(n)); }

TEST(GgufValidation, TruncatedMessagesSayWhere) {
  const Bytes full = small_model();
  expect_format_error(cut(full, 10), "truncated file: tensor count of header");
  expect_format_error(cut(full, 30), "truncated or corrupt file: metadata count 5 cannot fit");
  const TensorAt t = tensor_at(full, "out.weight");
  expect_format_error(cut(full, t.ne + 11), "truncated file: dimension of tensor 'out.weight'");
  expect_format_error(cut(full, t.offset + 2), "truncated file: data offset of tensor 'out.weight'");
}

TEST(GgufValidation, TruncatedInsideMetadata) {
  GgufWriter w;
  w.set_string("general.name", std::string(100, 'x'));
  w.set_string_array("toks", std::vector<std::string>(10, std::string(20, 'y')));
  w.set_u64(std::string(40, 'k'), 7);
  const Bytes b = w.to_bytes();
  const KvAt name = kv_at(b, "general.name");
  expect_format_error(cut(b, name.value + 8 + 50),
                      "truncated file: string value of key 'general.name' has length 100 but only");
  const KvAt toks = kv_at(b, "toks");
  expect_format_error(cut(b, toks.value + 12 + 3 * 28 + 10),
                      "truncated file: array string of key 'toks' has length 20 but only 2");
  expect_format_error(cut(b, toks.value + 12 + 4 * 28 + 4),
                      "truncated file: array string of key 'toks' at offset");
  expect_format_error(cut(b, toks.value + 6), "truncated file: array length of key 'toks'");
  const KvAt k = kv_at(b, std::string(40, 'k'));
  expect_format_error(cut(b, k.key + 8 + 20), "truncated file: key of metadata entry #2 has length 40");
  expect_format_error(cut(b, k.type + 2), "truncated file: value type of key 'kkkk");
  expect_format_error(cut(b, k.value + 3), "truncated file: value of key 'kkkk");
  expect_format_error(cut(b, k.value + 3), "needs 8 bytes but only 3 remain");
}

TEST(GgufValidation, TruncatedNumericArray) {
  GgufWriter w;
  w.set_int_array("ids", ValueType::INT32, std::vector<int64_t>(100, 5));
  const Bytes b = w.to_bytes();
  // Fixed-size elements: the count check catches it before reading any element.
  expect_format_error(cut(b, kv_at(b, "ids").value + 12 + 200),
                      "truncated or corrupt file: key 'ids' has an array of 100 INT32 elements");
}

TEST(GgufValidation, TruncatedFileOnDiskNamesPath) {
  const Bytes full = small_model();
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("edgellm_trunc_" + std::to_string(::getpid()) + ".gguf")).string();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(full.data()), static_cast<long>(full.size() - 1));
  }
  try {
    GgufFile::open(path);
    ADD_FAILURE() << "expected an error";
  } catch (const ModelFormatError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": tensor 'out.weight' data [", 0), 0u) << msg;
    EXPECT_NE(msg.find("extends past end of file (size " + std::to_string(full.size() - 1) + ")"),
              std::string::npos) << msg;
  }
  std::filesystem::remove(path);
  EXPECT_THROW(GgufFile::open(path), ModelFormatError);  // missing file
}

TEST(GgufValidation, TensorDataPastEnd) {
  Bytes b = small_model();
  poke<uint64_t>(b, tensor_at(b, "out.weight").offset, 1 << 20);
  expect_format_error(b, "tensor 'out.weight' data [");
  expect_format_error(b, "extends past end of file (size " + std::to_string(b.size()) + ")");
  poke<uint64_t>(b, tensor_at(b, "out.weight").offset, ~uint64_t{31});  // would overflow
  expect_format_error(b, "tensor 'out.weight' data offset");
}

TEST(GgufValidation, OverlappingTensors) {
  Bytes b = small_model();
  poke<uint64_t>(b, tensor_at(b, "out.weight").offset, 64);  // inside the Q4_0 tensor
  expect_format_error(b, "overlap");
  expect_format_error(b, "tensors 'norm.weight' [");
  expect_format_error(b, "and 'out.weight' [");
}

TEST(GgufValidation, MisalignedTensorOffset) {
  Bytes b = small_model();
  poke<uint64_t>(b, tensor_at(b, "out.weight").offset, 33);
  expect_format_error(b, "tensor 'out.weight' data offset 33 is not a multiple of the alignment 32");
}

TEST(GgufValidation, UnknownTensorType) {
  Bytes b = small_model();
  poke<uint32_t>(b, tensor_at(b, "norm.weight").type, 4);  // Q4_2, removed from ggml
  expect_format_error(b, "tensor 'norm.weight' has unknown tensor type id 4");
  poke<uint32_t>(b, tensor_at(b, "norm.weight").type, 0xFFFFFFFF);
  expect_format_error(b, "unknown tensor type id 4294967295");
}

TEST(GgufValidation, BadDimensionCount) {
  Bytes b = small_model();
  const TensorAt t = tensor_at(b, "norm.weight");
  poke<uint32_t>(b, t.n_dims, 0);
  expect_format_error(b, "tensor 'norm.weight' has n_dims 0 (must be 1..4)");
  poke<uint32_t>(b, t.n_dims, 5);
  expect_format_error(b, "tensor 'norm.weight' has n_dims 5");
}

TEST(GgufValidation, ZeroOrNegativeDimension) {
  Bytes b = small_model();
  const TensorAt t = tensor_at(b, "blk.0.ffn_up.weight");
  poke<int64_t>(b, t.ne + 8, 0);
  expect_format_error(b, "tensor 'blk.0.ffn_up.weight' has invalid dimension ne[1] = 0");
  poke<int64_t>(b, t.ne, -64);
  expect_format_error(b, "invalid dimension ne[0] = -64");
}

TEST(GgufValidation, ElementCountOverflow) {
  Bytes b = small_model();
  const TensorAt t = tensor_at(b, "out.weight");  // F32 [8, 2, 2]
  poke<int64_t>(b, t.ne, int64_t{1} << 32);
  poke<int64_t>(b, t.ne + 8, int64_t{1} << 31);
  expect_format_error(b, "tensor 'out.weight' element count overflows");
  // Elements fit in int64 (2^62) but bytes (x4) do not.
  poke<int64_t>(b, t.ne, int64_t{1} << 31);
  poke<int64_t>(b, t.ne + 8, int64_t{1} << 31);
  poke<int64_t>(b, t.ne + 16, 1);
  expect_format_error(b, "tensor 'out.weight' byte size overflows");
}

TEST(GgufValidation, RowNotMultipleOfBlock) {
  Bytes b = small_model();
  poke<int64_t>(b, tensor_at(b, "blk.0.ffn_up.weight").ne, 48);
  expect_format_error(
      b, "tensor 'blk.0.ffn_up.weight' (Q4_0) has ne[0] = 48, not a multiple of the block size 32");
}

TEST(GgufValidation, AbsurdCounts) {
  const Bytes full = small_model();
  Bytes b = full;
  poke<uint64_t>(b, 8, uint64_t{1} << 60);
  expect_format_error(b, "tensor count 1152921504606846976 cannot fit");
  b = full;
  poke<uint64_t>(b, 16, ~uint64_t{0});
  expect_format_error(b, "metadata count 18446744073709551615 cannot fit");
  b = full;
  poke<uint64_t>(b, kv_at(b, "general.architecture").value, uint64_t{1} << 62);
  expect_format_error(b, "string value of key 'general.architecture' has length 4611686018427387904");
  b = full;
  poke<uint64_t>(b, kv_at(b, "tokenizer.ggml.token_type").value + 4, uint64_t{1} << 61);
  expect_format_error(b, "key 'tokenizer.ggml.token_type' has an array of 2305843009213693952 INT32");
  b = full;
  poke<uint64_t>(b, kv_at(b, "general.architecture").key, uint64_t{1} << 40);  // key length
  expect_format_error(b, "key of metadata entry #0 has length 1099511627776");
  b = full;
  poke<uint64_t>(b, tensor_at(b, "norm.weight").name, 1000000);
  expect_format_error(b, "tensor name of tensor info #0 has length 1000000");
}

TEST(GgufValidation, DuplicateKey) {
  GgufWriter w;
  w.set_u32("a.b", 1);
  w.set_u32("a.c", 2);
  Bytes b = w.to_bytes();
  b[kv_at(b, "a.c").key + 8 + 2] = 'b';
  expect_format_error(b, "duplicate metadata key 'a.b'");
}

TEST(GgufValidation, DuplicateTensorName) {
  GgufWriter w;
  w.add_tensor("t1", TensorType::F32, {8}, Bytes(32));
  w.add_tensor("t2", TensorType::F32, {8}, Bytes(32));
  Bytes b = w.to_bytes();
  b[tensor_at(b, "t2").name + 8 + 1] = '1';
  expect_format_error(b, "duplicate tensor name 't1'");
}

TEST(GgufValidation, NamesInMessagesAreEscaped) {
  GgufWriter w;
  w.add_tensor("x\ny", TensorType::F32, {8}, Bytes(32));
  w.add_tensor("x\nz", TensorType::F32, {8}, Bytes(32));
  Bytes b = w.to_bytes();
  b[tensor_at(b, "x\nz").name + 8 + 2] = 'y';
  expect_format_error(b, "duplicate tensor name 'x\\x0ay'");  // one line (checked by helper)
}

// The writer refuses a bad general.alignment, so write it under a same-length key and rename.
Bytes with_alignment_value(const Value& v) {
  GgufWriter w = small_model_writer();
  w.set("general.alignmenX", v);
  Bytes b = w.to_bytes();
  b[kv_at(b, "general.alignmenX").key + 8 + 16] = 't';
  return b;
}

TEST(GgufValidation, AlignmentWrongType) {
  Value s;
  s.type = ValueType::STRING;
  s.scalar = std::string("32");
  expect_format_error(with_alignment_value(s), "general.alignment has type STRING, expected UINT32");
  Value i;
  i.type = ValueType::INT32;
  i.scalar = int64_t{32};
  expect_format_error(with_alignment_value(i), "general.alignment has type INT32");
}

TEST(GgufValidation, AlignmentNotPowerOfTwo) {
  Value v;
  v.type = ValueType::UINT32;
  v.scalar = uint64_t{48};
  expect_format_error(with_alignment_value(v), "general.alignment is 48; it must be a power of two");
  v.scalar = uint64_t{0};
  expect_format_error(with_alignment_value(v), "general.alignment is 0");
  v.scalar = uint64_t{64};  // valid, but the writer laid tensors out at 32: offsets misalign
  expect_format_error(with_alignment_value(v), "is not a multiple of the alignment 64");
}

TEST(GgufValidation, InvalidValueTypeId) {
  Bytes b = small_model();
  poke<uint32_t>(b, kv_at(b, "llama.block_count").type, 13);
  expect_format_error(b, "key 'llama.block_count' has invalid value type id 13");
  b = small_model();
  poke<uint32_t>(b, kv_at(b, "tokenizer.ggml.token_type").value, 99);
  expect_format_error(b, "key 'tokenizer.ggml.token_type' has an array with invalid element type id 99");
}

TEST(GgufValidation, DeeplyNestedArraysRejected) {
  // 10 levels of ARRAY of ARRAY, each holding one element; the innermost is an empty u8 array.
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = ValueType::UINT8;
  for (int i = 0; i < 10; ++i) {
    Value outer;
    outer.type = ValueType::ARRAY;
    outer.elem_type = ValueType::ARRAY;
    outer.nested.push_back(std::move(v));
    v = std::move(outer);
  }
  GgufWriter w;
  w.set("deep", v);
  const Bytes b = w.to_bytes();
  expect_format_error(b, "key 'deep' nests arrays deeper than 8 levels");
}

TEST(GgufAccessors, WrongTypesAndMissing) {
  const Bytes b = small_model();
  auto f = GgufFile::from_memory(b.data(), b.size(), "test.gguf");
  EXPECT_FALSE(f->get_int("nope").has_value());
  EXPECT_EQ(f->get_string_array("nope"), nullptr);
  EXPECT_FALSE(f->has("nope"));
  EXPECT_EQ(f->find_tensor("nope"), nullptr);
  auto msg_of = [](auto&& fn) {
    try {
      fn();
    } catch (const ModelFormatError& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  EXPECT_EQ(msg_of([&] { f->require_int("llama.context_length"); }),
            "missing required key 'llama.context_length' in test.gguf");
  EXPECT_EQ(msg_of([&] { f->get_int("general.architecture"); }),
            "test.gguf: key 'general.architecture' has type STRING, expected an integer");
  EXPECT_EQ(msg_of([&] { f->get_string("llama.block_count"); }),
            "test.gguf: key 'llama.block_count' has type UINT32, expected STRING");
  EXPECT_EQ(msg_of([&] { f->get_bool("llama.block_count"); }),
            "test.gguf: key 'llama.block_count' has type UINT32, expected BOOL");
  EXPECT_EQ(msg_of([&] { f->get_string_array("tokenizer.ggml.token_type"); }),
            "test.gguf: key 'tokenizer.ggml.token_type' has type ARRAY of INT32, expected ARRAY of STRING");
  EXPECT_THROW(f->get_int_array("tokenizer.ggml.tokens"), ModelFormatError);
  EXPECT_THROW(f->get_float_array("tokenizer.ggml.tokens"), ModelFormatError);
  EXPECT_THROW(f->get_float("general.architecture"), ModelFormatError);
  EXPECT_EQ(msg_of([&] { f->require_tensor("output.weight", {64}); }),
            "test.gguf: missing required tensor 'output.weight'");
  EXPECT_EQ(msg_of([&] { f->require_tensor("blk.0.ffn_up.weight", {64, 3}); }),
            "test.gguf: tensor 'blk.0.ffn_up.weight' has shape [64, 2], expected [64, 3]");
  EXPECT_EQ(msg_of([&] { f->require_tensor("out.weight", {8, 4}); }),
            "test.gguf: tensor 'out.weight' has shape [8, 2, 2], expected [8, 4]");
}

}  // namespace
}  // namespace edgellm::io::testing
